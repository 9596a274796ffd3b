"""Training settings and presets.

`seed` is the blog's recipe (LSTM 512 -> 256, dropout 0.3, 100-token context, Adam 1e-3), trained
the efficient way: every position of a window is a target and the state is carried.
`default` is what held-out measurements on a small corpus on a CPU favour (benchmarks/RESULTS.md).
`finetune` is the default for a run that starts from a trained model (`init`).
`small` is the default with the AWD-LSTM regularisers on (Merity et al. 2017), for folders of
20-200 pieces; its values are the paper's scaled to one layer, NOT yet tuned here: run
benchmarks/regularisation.py on your folders and read its figures before trusting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.settings import Bound, build_config, check_bounds, shown

PRESETS: dict[str, dict[str, Any]] = {
    "seed": {
        "embedding_dim": 0,  # as wide as the vocabulary: spans what the blog's one-hot input spans
        "hidden_sizes": [512, 256],
        "dropout": 0.3,
        "window": 100,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "clip": 0.0,
        "lr_decay": 1.0,
        "transpose": "0",
    },
    "default": {},  # the dataclass defaults below
    # with --init: a short warm-up for the fresh optimizer (the weights need no search from
    # nothing); otherwise the default's steps. Chosen on the valid splits of two folders of the
    # seed's songs (92 and 20 files) fine-tuned from the base model (benchmarks/RESULTS.md,
    # issue 12): learning rate 1e-3 was best on 92 files (3e-3 1.9% worse), 3e-3 on 20 (1e-3
    # 16% worse), 3e-4 worst on both; stopping after 4 stalled validations beat stopping after
    # 2 on both (1.686 against 1.712 nats per token, 3.390 against 3.541). Smaller steps that
    # "keep what the base knows" did not pay: its folk tunes and chorales are far from them.
    "finetune": {
        "warmup_steps": 10,
    },
    # embedding as wide as the layer so the head can share it; AWD-LSTM's rates, a little lower
    # for a single layer; the averaged weights validated and saved. Measured, not chosen
    # (benchmarks/RESULTS.md, "small-data presets (issue 20)"): 5 CPU-minutes on three valid
    # splits, 4% fewer bits per note than the default on 60 chorales, 15% more on 92 songs
    "small": {
        "embedding_dim": 512,
        "hidden_sizes": [512],
        "dropout": 0.3,
        "locked_dropout": True,
        "input_dropout": 0.2,
        "embedding_dropout": 0.1,
        "weight_drop": 0.3,
        "tie_weights": True,
        "weight_decay": 0.1,
        "average": 0.999,
    },
}
LR_SCHEDULES = ("plateau", "budget")
LR_FLOOR = 0.02  # the budget schedule's last share of the rate: the last steps still move
FINE_TUNE_PRESET = "finetune"  # the preset a run with `init` starts from unless told otherwise
BIG = 10**12  # steps and the like: no run comes near it, but a number of 5,000 digits is refused
MAX_LAYER = Bound(1, 16384, integer=True)  # units of one LSTM layer
# every number's range, in one place (the CLI refuses by these)
BOUNDS: dict[str, Bound] = {
    "embedding_dim": Bound(0, 16384, integer=True),
    "dropout": Bound(0, 1),  # below 1: checked apart (so are the rates below)
    "weight_drop": Bound(0, 1),
    "input_dropout": Bound(0, 1),
    "embedding_dropout": Bound(0, 1),
    "average": Bound(0, 1),
    "window": Bound(1, 1_000_000, integer=True),
    "batch_size": Bound(1, 65536, integer=True),
    "velocity_shift": Bound(0, 127, integer=True),
    "velocity_jitter": Bound(0, 127, integer=True),
    "duration_jitter": Bound(0, 64, integer=True),
    "onset_jitter": Bound(0, 64, integer=True),
    "lr": Bound(0, 10, above=True),
    "weight_decay": Bound(0, 10),
    "warmup_steps": Bound(0, BIG, integer=True),
    "clip": Bound(0, 1e6),
    "lr_decay": Bound(0, 1, above=True),
    "lr_patience": Bound(1, BIG, integer=True),
    "patience": Bound(0, BIG, integer=True),
    "epochs": Bound(1, BIG, integer=True),
    "max_steps": Bound(0, BIG, integer=True),
    "max_minutes": Bound(0, 525_600),  # a year
    "eval_every": Bound(0, BIG, integer=True),
    "seed": Bound(0, 2**32 - 1, integer=True),  # NumPy's legacy seeds stop there
    "threads": Bound(0, 4096, integer=True),
}


@dataclass
class TrainConfig:
    """Everything `train` needs besides the corpus; saved resolved in the run folder."""

    preset: str = "default"
    # model
    embedding_dim: int = 256  # 0 = as wide as the vocabulary (what a one-hot input spans)
    hidden_sizes: list[int] = field(default_factory=lambda: [512])
    dropout: float = 0.3
    # AWD-LSTM regularisers (model.lstm), all off by default
    weight_drop: float = 0.0  # DropConnect on the recurrent weights, per window
    locked_dropout: bool = False  # dropout with one mask per sequence across time
    input_dropout: float = 0.0  # dropout on the embedding's output
    embedding_dropout: float = 0.0  # whole tokens dropped from the embedding
    tie_weights: bool = False  # the head shares the embedding (needs embedding = last layer)
    # data
    window: int = 128  # tokens per truncated-BPTT window
    batch_size: int = 32  # lanes per process
    transpose: str = "-5..6"  # semitone range for pitch augmentation; "0" = off
    velocity_shift: int = 0  # per piece, velocity tokens moved up to this many bins; 0 = off
    velocity_jitter: int = 0  # per token, up to this many bins more; 0 = off
    duration_jitter: int = 0  # per note, duration tokens moved up to this many bins; 0 = off
    onset_jitter: int = 0  # per onset, REMI positions moved up to this many steps; 0 = off
    # optimisation
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    clip: float = 1.0  # gradient norm clipping; 0 = off
    lr_decay: float = 0.5  # learning rate factor when validation stops improving; 1 = off
    lr_patience: int = 1  # validations without improvement before each decay
    # "budget": besides those decays, the rate falls linearly towards zero over the run's budget
    # (the first of max_minutes, max_steps and epochs to end): a run cut by its time budget ends
    # annealed instead of at full rate (Li et al. 2020, budgeted training); "plateau": only them
    lr_schedule: str = "plateau"
    patience: int = 4  # validations without improvement before stopping; 0 = never stop early
    # averaged weights: an exponential moving average of the weights (this decay per step; 0 =
    # off), what validation scores and the checkpoints hold; the raw weights go on training
    average: float = 0.0
    # budgets (0 = none); training stops at the first reached
    epochs: int = 30
    max_steps: int = 0
    max_minutes: float = 0.0
    eval_every: int = 0  # steps between validations inside an epoch; 0 = once per epoch
    # fine-tuning: the model to start from (a shipped name, a checkpoint or a run folder); its
    # sizes replace the ones above, and `init_sha256` (set by `train`) records the file's digest
    init: str = ""
    init_sha256: str = ""
    # run
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision (bfloat16) on CUDA
    threads: int = 0  # CPU threads per process; 0 = PyTorch's choice (all cores, shared by ranks)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise LstmMusicError(f"unknown preset {self.preset!r}; choose {', '.join(PRESETS)}")
        if self.optimizer not in ("adam", "adamw"):
            raise SettingError("the optimizer must be adam or adamw", "optimizer")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SettingError("the learning-rate schedule must be plateau or budget",
                               "lr_schedule")  # fmt: skip
        check_bounds(self, BOUNDS)
        for name in ("dropout", "weight_drop", "input_dropout", "embedding_dropout", "average"):
            if not 0 <= getattr(self, name) < 1:
                raise SettingError(f"{name} must be in [0, 1)", name)
        for name in ("locked_dropout", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise SettingError(f"{name} must be true or false", name)
        sizes = self.hidden_sizes
        if not sizes or len(sizes) > 16 or not all(map(MAX_LAYER.accepts, sizes)):
            raise SettingError(f"hidden layer sizes must be 1 to {MAX_LAYER.high:g}, at most 16 "
                               "layers, e.g. 512,256", "hidden_sizes")  # fmt: skip
        parse_transpose(self.transpose)
        width = self.embedding_dim  # 0: the vocabulary's size, checked when it is known
        if self.tie_weights and width and width != sizes[-1]:
            raise SettingError(f"tied weights need the embedding as wide as the last layer "
                               f"({width} against {sizes[-1]})", "tie_weights")  # fmt: skip


def parse_transpose(text: str) -> tuple[int, int]:
    """ "-5..6" -> (-5, 6); "0", "off" or "" -> (0, 0)."""
    text = str(text).strip().lower()
    if text in ("", "0", "off", "none"):
        return 0, 0
    low, sep, high = text.partition("..")
    try:
        bounds = (int(low), int(high)) if sep else (-abs(int(low)), abs(int(low)))
    except ValueError as error:
        raise SettingError(
            f"transpose takes a range like -5..6, not {shown(text)}", "transpose"
        ) from error
    if not -12 <= bounds[0] <= 0 <= bounds[1] <= 12:
        raise SettingError(
            "the transpose range must include 0 and stay within -12..12", "transpose"
        )
    return bounds


def preset_layer(name: str) -> dict[str, Any]:
    """The preset's settings as a config layer (unknown names fail in TrainConfig)."""
    if name not in PRESETS:
        raise LstmMusicError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
    return {"preset": name, **PRESETS[name]}


def preset_config(name: str, **settings: Any) -> TrainConfig:
    """The preset's settings with `settings` on top: the library's way to what `train --preset
    NAME` builds (`TrainConfig(preset=...)` alone only names the preset)."""
    return build_config(TrainConfig, preset_layer(name), settings)
