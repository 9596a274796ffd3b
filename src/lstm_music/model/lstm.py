"""The model: token embedding -> stacked LSTM layers -> dropout -> linear to the vocabulary.

Layers may differ in width (the seed's 512 then 256), so each is its own `nn.LSTM`. The forward
pass takes and returns the recurrent state, so training can carry it across windows of a piece
(truncated BPTT) and generation can advance one token at a time.

A one-hot input to an LSTM (the seed's Keras model) is an embedding lookup into the LSTM's input
weights; an embedding at least as wide as the vocabulary spans exactly the same functions.

The AWD-LSTM regularisers (Merity et al. 2017, "Regularizing and optimizing LSTM language
models"), each off by default so that older checkpoints load and behave as they did: DropConnect
on the recurrent weights (`weight_drop`), one dropout mask per sequence across time
(`locked_dropout`, for `dropout` and `input_dropout`), whole token rows of the embedding dropped
(`embedding_dropout`), and the head sharing the embedding's weight (`tie_weights`). All but tying
act in training only: in eval mode, in `FastStepper` and in the saved weights the model is the
plain LSTM, so generation matches the forward pass whatever was used in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

# per layer: (h, c), each (batch, hidden_size)
HiddenState = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ModelConfig:
    """Shape of the network; stored in every checkpoint."""

    vocab_size: int
    embedding_dim: int = 256
    hidden_sizes: list[int] = field(default_factory=lambda: [512, 512])
    dropout: float = 0.3  # after the embedding's LSTM outputs, between layers and before the head
    # regularisers (training only, except tying); off by default, and a checkpoint stores only
    # those that are on, so a model without them is written as before
    weight_drop: float = 0.0  # DropConnect on each layer's hidden-to-hidden weights
    locked_dropout: bool = False  # `dropout` and `input_dropout`: one mask per sequence
    input_dropout: float = 0.0  # on the embedding's output, before the first layer
    embedding_dropout: float = 0.0  # whole token rows of the embedding
    tie_weights: bool = False  # the head's weight is the embedding's (one tensor)

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.embedding_dim < 1 or not self.hidden_sizes:
            raise ValueError("a model needs a vocabulary, an embedding and at least one layer")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError("hidden sizes must be positive")
        for name in ("dropout", "weight_drop", "input_dropout", "embedding_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.tie_weights and self.embedding_dim != self.hidden_sizes[-1]:
            raise ValueError(  # no projection: the head reads the last layer's state directly
                f"tied weights need the embedding as wide as the last layer "
                f"({self.embedding_dim} against {self.hidden_sizes[-1]})"
            )


REGULARISERS = ("weight_drop", "locked_dropout", "input_dropout", "embedding_dropout",
                "tie_weights")  # fmt: skip


def stored_config(config: ModelConfig) -> dict:
    """The config as a checkpoint stores it: the regularisers only when on, so a model trained
    without them is written exactly as before (and older readers still read it)."""
    defaults = {f.name: f.default for f in fields(ModelConfig) if f.name in REGULARISERS}
    return {k: v for k, v in asdict(config).items() if k not in defaults or v != defaults[k]}


class LSTMModel(nn.Module):
    """`forward(ids, state) -> (logits, state)`; raw logits, the loss lives in the trainer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        sizes = [config.embedding_dim, *config.hidden_sizes]
        self.layers = nn.ModuleList(
            nn.LSTM(inputs, outputs, batch_first=True) for inputs, outputs in zip(sizes, sizes[1:])
        )
        self.head = nn.Linear(sizes[-1], config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight  # one parameter, stored once

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> HiddenState:
        """Zero state for `batch_size` sequences: where every piece starts."""
        device = device or self.head.weight.device
        zeros = [torch.zeros(batch_size, size, device=device) for size in self.config.hidden_sizes]
        return [(h, torch.zeros_like(h)) for h in zeros]

    def forward(
        self,
        ids: torch.Tensor,
        state: HiddenState | None = None,
        resets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, HiddenState]:
        """ids (batch, time) -> logits (batch, time, vocab), and the state after the last step.

        `resets` (batch, time) bool, in training: zero a row's state before the positions where a
        new piece starts inside the window. Each layer then runs segment by segment between the
        columns where any row resets: measured with 32 lanes of 128 tokens, 2.6 segments a
        window for pieces of 3,000 tokens, 14 for folk tunes of 300 (about 6% slower on a CPU).
        """
        x = self._embed(ids)  # (B, T, E)
        if self.config.input_dropout:
            x = self._drop(x, self.config.input_dropout)
        state = state or self.init_state(ids.shape[0], ids.device)
        cuts, keeps = _segments(resets, x.dtype, ids.shape[1])
        new_state: HiddenState = []
        for layer, (h, c) in zip(self.layers, state):
            run = self._recurrent(layer)
            h, c = h.unsqueeze(0), c.unsqueeze(0)  # (1, B, H_layer)
            outputs = []
            for begin, end, keep in zip(cuts, cuts[1:], keeps):
                if keep is not None:
                    h, c = h * keep, c * keep
                out, (h, c) = run(x[:, begin:end], (h, c))  # out: (B, end - begin, H_layer)
                outputs.append(out)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
            x = self._drop(x, self.config.dropout)
            new_state.append((h.squeeze(0), c.squeeze(0)))
        return self.head(x), new_state

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        """The embedding; in training with `embedding_dropout`, whole token rows zeroed (a token
        dropped everywhere it occurs in the window), the rest scaled up to keep the mean."""
        p = self.config.embedding_dropout
        if not (self.training and p):
            return self.embedding(ids)
        weight = self.embedding.weight
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        return F.embedding(ids, weight * mask)

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Dropout on (B, T, H): one mask per sequence for all time steps with `locked_dropout`
        (variational dropout), else a fresh one per element (`nn.Dropout`, as before)."""
        if not self.config.locked_dropout:
            return F.dropout(x, p, self.training)  # what nn.Dropout does
        if not (self.training and p):
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
        return x * mask

    def _recurrent(self, layer: nn.LSTM) -> Callable:
        """The layer to run; in training with `weight_drop`, the same layer with DropConnect on
        its hidden-to-hidden weights (one mask per window), by a functional call: the fused
        kernel runs on the dropped copy and the layer's own weights stay as they are."""
        p = self.config.weight_drop
        if not (self.training and p):
            return layer
        dropped = {"weight_hh_l0": F.dropout(layer.weight_hh_l0, p, True)}
        return lambda inputs, state: functional_call(layer, dropped, (inputs, state))


def _segments(
    resets: torch.Tensor | None, dtype: torch.dtype, length: int
) -> tuple[list[int], list[torch.Tensor | None]]:
    """Column bounds of the segments between resets, and per segment the (1, B, 1) factor that
    keeps (1) or zeroes (0) each row's state at its start; None where nothing resets."""
    if resets is None:
        return [0, length], [None]
    flags = resets.detach().to("cpu")  # one copy from the device; the cuts are decided here
    columns = torch.nonzero(flags.any(dim=0)).flatten().tolist()
    cuts = sorted({0, *columns}) + [length]
    starts = flags[:, cuts[:-1]]  # (B, segments): which rows reset where each segment starts
    factors = (~starts).to(dtype).t().to(resets.device)  # one copy back, (segments, B)
    keeps = [
        factors[i].view(1, -1, 1) if bool(starts[:, i].any()) else None
        for i in range(len(cuts) - 1)
    ]
    return cuts, keeps


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state dict's tensor shapes for `config`, computed without allocating anything, so a
    checkpoint's header can be checked against its config before a model is built."""
    vocab, sizes = config.vocab_size, [config.embedding_dim, *config.hidden_sizes]
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (vocab, sizes[0])}
    for i, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        prefix = f"layers.{i}."
        shapes[prefix + "weight_ih_l0"] = (4 * outputs, inputs)  # gates i, f, g, o stacked
        shapes[prefix + "weight_hh_l0"] = (4 * outputs, outputs)
        shapes[prefix + "bias_ih_l0"] = (4 * outputs,)
        shapes[prefix + "bias_hh_l0"] = (4 * outputs,)
    if not config.tie_weights:  # tied: the embedding's tensor, stored once
        shapes["head.weight"] = (vocab, sizes[-1])
    shapes["head.bias"] = (vocab,)
    return shapes


def stored_tensors(model: LSTMModel) -> dict[str, torch.Tensor]:
    """The weights a file stores: the state dict, a tied head's weight left out (safetensors
    refuses two names for one tensor, and it would be stored twice)."""
    tensors = model.state_dict()
    if model.config.tie_weights:
        tensors.pop("head.weight", None)
    return tensors


def load_stored(model: LSTMModel, tensors: dict[str, torch.Tensor]) -> None:
    """Load what `stored_tensors` gave (a tied head takes the embedding's weight)."""
    if model.config.tie_weights:
        tensors = {**tensors, "head.weight": tensors["embedding.weight"]}
    model.load_state_dict(tensors)


def detach_state(state: HiddenState) -> HiddenState:
    """Cut the graph between windows: gradients stop here, the values carry on."""
    return [(h.detach(), c.detach()) for h, c in state]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
