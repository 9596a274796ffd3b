"""Small-data training: the model's regularisers from the settings, and averaged weights.

The averaged weights (`average` > 0) are an exponential moving average of the weights, updated
after every optimiser step (the Polyak averaging AWD-LSTM uses, as a moving average so that it
needs no switch point). Validation scores the average and the checkpoints hold it, since that is
what a small folder's held-out music is predicted best by; the optimiser goes on stepping the
raw weights. The training state keeps both, so a resumed run is the run that never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from lstm_music.errors import SettingError
from lstm_music.model.lstm import LSTMModel, ModelConfig
from lstm_music.training.settings import TrainConfig

WARM_UP = 10  # the decay at step t is at most (1 + t) / (10 + t): early weights fade fast


def model_config(config: TrainConfig, vocab: int) -> ModelConfig:
    """The network `config` asks for, over a vocabulary of `vocab` tokens."""
    width = config.embedding_dim or vocab
    try:
        return ModelConfig(
            vocab,
            width,
            list(config.hidden_sizes),
            config.dropout,
            weight_drop=config.weight_drop,
            locked_dropout=config.locked_dropout,
            input_dropout=config.input_dropout,
            embedding_dropout=config.embedding_dropout,
            tie_weights=config.tie_weights,
        )
    except ValueError as error:  # tied weights with the vocabulary's width (embedding 0)
        raise SettingError(str(error), "tie_weights") from error


class WeightAverage:
    """An exponential moving average of a model's parameters (a tied weight counted once)."""

    def __init__(self, model: LSTMModel, decay: float) -> None:
        self.model, self.decay = model, decay
        self.tensors: dict[str, torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Start the average at the weights as they are (a fine-tuned run's loaded ones)."""
        self.tensors = {n: p.detach().clone() for n, p in self.model.named_parameters()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimiser step `step` (1 for the first)."""
        decay = min(self.decay, (1 + step) / (WARM_UP + step))
        for name, parameter in self.model.named_parameters():
            self.tensors[name].lerp_(parameter.detach().to(self.tensors[name].dtype), 1 - decay)

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """The model holds the average inside this block, its own weights again after it."""
        parameters = dict(self.model.named_parameters())
        own = {name: p.detach().clone() for name, p in parameters.items()}
        try:
            with torch.no_grad():
                for name, parameter in parameters.items():
                    parameter.copy_(self.tensors[name])
            yield
        finally:
            with torch.no_grad():
                for name, parameter in parameters.items():
                    parameter.copy_(own[name])


@contextmanager
def averaged(average: WeightAverage | None) -> Iterator[None]:
    """`average.in_use()`, or nothing when the run keeps no average."""
    if average is None:
        yield
        return
    with average.in_use():
        yield
