"""Stateful decoding: one LSTM step per new token, never re-running the context.

`FastStepper` is the model rewritten for one time step at a time: the first layer's input
projection is precomputed per token (embedding @ W_ih + biases is a (vocab, 4H) table), each
further layer does one matrix multiply on [input, h], and the gate arithmetic runs in place-free
PyTorch ops. It gives the same logits as `LSTMModel.forward` (tested), several times faster than
calling `nn.LSTM` for a single step.
"""

from __future__ import annotations

import torch

from lstm_music.model import LSTMModel, State


class FastStepper:
    """`step(tokens (B,), state) -> (logits (B, V), state)` for a trained `LSTMModel`."""

    @torch.no_grad()
    def __init__(self, model: LSTMModel) -> None:
        first = model.layers[0]
        # (V, 4H): what the first layer's gates receive from each token, biases included
        self.table = torch.addmm(first.bias_ih_l0 + first.bias_hh_l0, model.embedding.weight,
                                 first.weight_ih_l0.t()).contiguous()  # fmt: skip
        self.first_hh = first.weight_hh_l0.t().contiguous()  # (H0, 4H0)
        self.layers = [
            (torch.cat([layer.weight_ih_l0.t(), layer.weight_hh_l0.t()]).contiguous(),  # (I+H, 4H)
             (layer.bias_ih_l0 + layer.bias_hh_l0).contiguous())
            for layer in model.layers[1:]
        ]  # fmt: skip
        self.head_weight = model.head.weight.t().contiguous()  # (H_last, V)
        self.head_bias = model.head.bias.detach().clone()
        self.model = model

    @staticmethod
    def _cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """PyTorch's gate order is input, forget, cell, output."""
        size = c.shape[1]
        activated = gates.sigmoid()  # (B, 4H); the cell-gate quarter is recomputed with tanh
        i, f, o = activated[:, :size], activated[:, size : 2 * size], activated[:, 3 * size :]
        g = gates[:, 2 * size : 3 * size].tanh()
        c = torch.addcmul(f * c, i, g)
        return o * c.tanh(), c

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        (h, c), rest = state[0], state[1:]
        h, c = self._cell(torch.addmm(self.table[tokens], h, self.first_hh), c)
        new_state = [(h, c)]
        x = h
        for (weight, bias), (h, c) in zip(self.layers, rest):
            h, c = self._cell(torch.addmm(bias, torch.cat([x, h], dim=1), weight), c)
            new_state.append((h, c))
            x = h
        return torch.addmm(self.head_bias, x, self.head_weight), new_state


def pick_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token per row of logits (B, V): argmax, or a sample after temperature/top-k/top-p."""
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        # drop a token when the tokens ranked above it already cover top_p
        drop = probs.cumsum(dim=-1) - probs > top_p
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
