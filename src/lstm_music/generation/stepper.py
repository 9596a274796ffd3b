"""Stateful decoding: one LSTM step per new token, never re-running the context.

`FastStepper` is the model rewritten for one time step at a time: the first layer's input
projection is precomputed per token (embedding @ W_ih + biases is a (vocab, 4H) table), each
further layer does one matrix multiply on [input, h], and the sigmoid gates come from a single
tanh (sigmoid(x) = tanh(x/2)/2 + 1/2). It gives the same logits as `LSTMModel.forward` (tested).

On a CPU it runs on NumPy arrays: a one-row matrix product through NumPy's OpenBLAS costs about
half of PyTorch's here (50 vs 110 us for the seed's 512 x 2048 layer), and a step is a handful of
them. On a GPU the same code runs on torch tensors (`xp` is the array module either way).
Sampling is NumPy's in both cases, so a seed gives the same music on every device type.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from lstm_music.generation.sampling import SamplingOptions, with_model_defaults
from lstm_music.model.lstm import HiddenState, LSTMModel

Array = Any  # np.ndarray on the CPU, torch.Tensor elsewhere


class FastStepper:
    """`step(tokens (B,), state) -> (logits (B, V), state)` for a trained `LSTMModel`."""

    @torch.no_grad()
    def __init__(self, model: LSTMModel, use_numpy: bool | None = None) -> None:
        device = model.head.weight.device
        self.use_numpy = device.type == "cpu" if use_numpy is None else use_numpy
        first = model.layers[0]
        table = torch.addmm(
            first.bias_ih_l0 + first.bias_hh_l0, model.embedding.weight, first.weight_ih_l0.t()
        )  # (V, 4H0)
        self.table = self._array(table)
        self.first_hh = self._array(first.weight_hh_l0.t())  # (H0, 4H0)
        # per further layer: W (I+H, 4H) = [W_ih; W_hh] transposed, so [x, h] @ W gives the gates
        self.layers = [
            (self._array(torch.cat([layer.weight_ih_l0.t(), layer.weight_hh_l0.t()])),
             self._array(layer.bias_ih_l0 + layer.bias_hh_l0))
            for layer in model.layers[1:]
        ]  # fmt: skip
        self.head_weight = self._array(model.head.weight.t())  # (H_last, V)
        self.head_bias = self._array(model.head.bias)
        self.xp = np if self.use_numpy else torch

    def _array(self, tensor: torch.Tensor) -> Array:
        tensor = tensor.detach().float().contiguous()
        return np.ascontiguousarray(tensor.cpu().numpy()) if self.use_numpy else tensor

    def convert_state(self, state: HiddenState) -> list[tuple[Array, Array]]:
        """The model's torch state as this stepper's arrays."""
        return [(self._array(h), self._array(c)) for h, c in state]

    def _cell(self, gates: Array, c: Array) -> tuple[Array, Array]:
        """PyTorch's gate order is input, forget, cell, output."""
        size = c.shape[1]
        act = self.xp.tanh(gates * 0.5) * 0.5 + 0.5  # sigmoid of every gate, (B, 4H)
        g = self.xp.tanh(gates[:, 2 * size : 3 * size])
        c = act[:, size : 2 * size] * c + act[:, :size] * g
        return act[:, 3 * size :] * self.xp.tanh(c), c

    def step(self, tokens: Array, state: list[tuple[Array, Array]]):
        (h, c), rest = state[0], state[1:]
        h, c = self._cell(self.table[tokens] + h @ self.first_hh, c)
        new_state, x = [(h, c)], h
        for (weight, bias), (h, c) in zip(self.layers, rest):
            gates = self.xp.concatenate([x, h], axis=1) @ weight  # one product for [x, h]
            h, c = self._cell(gates + bias, c)
            new_state.append((h, c))
            x = h
        return x @ self.head_weight + self.head_bias, new_state


def pick_tokens(
    logits: np.ndarray, sampling: SamplingOptions, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Next token per row of logits (B, V): argmax, or a sample after temperature/top-k/top-p.

    `sampling` is the caller's options whole (its temperature, top_k, top_p and greedy), so a
    setting added there reaches the pick without another signature to change. Sampling is by
    inverse CDF (one uniform draw per row against cumulative weights); top-p works on the
    tokens sorted by probability and maps the pick back to its id. A token whose logit is -inf
    (special tokens, the hard constraints of `masks`) is never picked, greedy or sampled.
    """
    sampling = with_model_defaults(sampling, {})  # unset without a model: the defaults
    temperature, top_k, top_p = sampling.temperature, sampling.top_k, sampling.top_p
    if sampling.greedy:
        return logits.argmax(axis=-1)
    rows = np.arange(len(logits))[:, None]  # (B, 1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]  # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))  # unnormalised probabilities
    order = None
    if top_p < 1.0:
        order = np.argsort(-weights, axis=-1)  # (B, V), likeliest first
        weights = weights[rows, order]
        cumulative = np.cumsum(weights, axis=-1)
        # keep a token while the tokens ranked above it cover less than top_p
        weights = np.where(cumulative - weights < top_p * cumulative[:, -1:], weights, 0.0)
    cumulative = np.cumsum(weights, axis=-1)
    rng = rng or np.random.default_rng()
    draws = rng.random((len(weights), 1)) * cumulative[:, -1:]
    picks = np.minimum((cumulative <= draws).sum(axis=-1), weights.shape[-1] - 1)
    stray = weights[rows[:, 0], picks] <= 0  # a draw rounded up to the total: clamped on the
    if stray.any():  # last id, which may be forbidden; take the last one with weight instead
        positive = weights[stray] > 0
        picks[stray] = positive.shape[-1] - 1 - positive[:, ::-1].argmax(axis=-1)
    return picks if order is None else order[rows[:, 0], picks]


def blas_controller(model: LSTMModel) -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, made once per generation (each
    `threadpool_limits` call rescans them: 0.3 ms idle, up to 2 ms a call on a busy machine)."""
    from threadpoolctl import ThreadpoolController

    on_cpu = model.head.weight.device.type == "cpu"  # FastStepper steps NumPy there
    return ThreadpoolController() if on_cpu else None


def one_blas_thread(controller: Any):
    """One BLAS thread while stepping on the CPU.

    A step multiplies a few rows by the weights: too little work to share, and OpenBLAS's
    threads spin-wait for each other, which on a busy machine costs ten times over. Measured on
    the 2-core machine with other work running (benchmarks/RESULTS.md): 0.25 against 2.9-4.9 ms
    per token for one piece, 0.09 against 0.19-0.90 for 64; a phrase primer's 100 tokens took
    0.1-1.4 s instead of 0.06-0.1 s.
    """
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
