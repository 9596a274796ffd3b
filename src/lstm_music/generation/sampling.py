"""`SamplingOptions`: how to pick tokens and how long a piece is, with every default in one place.

The command line reads its flag defaults from these fields and the web API its request defaults,
so a default is written here only. Temperature and top-p left unset (None) are the model's:
the choice its checkpoint records (`with_model_defaults`, asked by `start_generation`, the one
place they are resolved), else DEFAULT_TEMPERATURE and DEFAULT_TOP_P. The options are checked
when made, so a bad value fails before a model is loaded; a bad value raises `SettingError`
naming the field, in the library's own terms (the CLI adds the flag that sets it). Nothing
here imports torch: the web schema imports this module at start-up.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from lstm_music.errors import SettingError
from lstm_music.generation.controls import parse_density, parse_polyphony
from lstm_music.generation.masks import (
    instrument_items,
    parse_instruments,
    parse_key,
    parse_pitch_range,
)
from lstm_music.settings import Bound, check_bounds

DEFAULT_TEMPERATURE = 1.0  # when neither the user nor the model's checkpoint gives one
DEFAULT_TOP_P = 0.95
DEFAULT_MAX_SECONDS = 600.0  # no piece is longer unless asked (ten minutes, primer included)
# new-token caps for a length in seconds or bars: the shipped models write 16-34 tokens a second
TOKENS_PER_SECOND_CAP = 300
TOKENS_PER_BAR_CAP = 600
MIN_TOKEN_CAP = 4096
PRIMER_TOKENS = 100  # a primer's length in tokens when none is asked (CLI and web)
MAX_GUIDANCE = 8.0  # above this the controls drown the music
MAX_NEW_TOKENS = 30_000_000  # new tokens of a piece at most: 100,000 s at the seconds' cap
MAX_PIECE_SECONDS = 100_000.0  # what max_seconds may raise the cap to (MIDI holds far more)
MAX_BATCH_TOKENS = 64_000_000  # new tokens of a batch at most (their ids: 512 MB)
# every number's range, in one place (the CLI and the web API refuse by these; the API's own
# upper bounds are tighter). Tempo: MIDI writes microseconds a quarter in 24 bits (>= 3.6 bpm)
BOUNDS: dict[str, Bound] = {
    "tokens": Bound(1, MAX_NEW_TOKENS, integer=True),
    "seconds": Bound(0, MAX_PIECE_SECONDS, above=True),
    "bars": Bound(0, MAX_PIECE_SECONDS, above=True),
    "temperature": Bound(0.001, 100),  # past these the sampler's exponentials over/underflow
    "top_k": Bound(0, 1_000_000, integer=True),
    "top_p": Bound(0, 1, above=True),
    "num": Bound(1, 1024, integer=True),
    "seed": Bound(0, 2**64 - 1, integer=True),
    "tempo": Bound(4, 1000),
    "program": Bound(0, 127, integer=True),
    "max_seconds": Bound(0, MAX_PIECE_SECONDS, above=True),
    "max_tokens": Bound(1, MAX_NEW_TOKENS, integer=True),
    "guidance": Bound(1, MAX_GUIDANCE),
    "primer_tokens": Bound(1, 100_000, integer=True),
}


@dataclass
class SamplingOptions:
    """How to sample and how long; validated on creation so bad values fail before any work."""

    tokens: int = 512
    seconds: float | None = None
    bars: float | None = None
    temperature: float | None = None  # None: the model's recorded choice, else the default
    top_k: int = 0
    top_p: float | None = None  # None: the model's recorded choice, else the default
    greedy: bool = False
    num: int = 1
    seed: int | None = None
    primer: list[str] = field(default_factory=list)  # tokens to continue
    tempo: float | None = None  # quarter notes per minute: the MIDI's, and any tempo tokens
    program: int | None = None  # General MIDI program of every track
    include_primer: bool = True  # the score starts with the primer (the blog's output does)
    max_seconds: float | None = None  # cap on every piece (None: 600 s); `seconds` within it
    max_tokens: int | None = None  # new-token cap for seconds/bars (None: generous, see top)
    # hard constraints on what is sampled, for any model (generation/masks.py), and soft
    # controls forced after each bar header, for models trained with them (generation/controls)
    key: str | None = None  # "D-minor": a control (models with the key control), or key_strict
    key_strict: bool = False  # no pitch outside the key's scale (drums excepted)
    pitch_range: tuple[int, int] | None = None  # lowest and highest pitch (or "48..84", "C3..C6")
    instruments: tuple[Any, ...] | None = None  # GM families or programs ("piano,bass,drums")
    density: str | int | None = None  # notes per bar: "low", "medium", "high" or a number
    polyphony: tuple[int, int] | int | str | None = None  # notes at once: 3 (at most), "2..4"
    # how strongly the soft controls steer: 1 follows the model as trained; above 1 each step
    # moves away from what the model would write without them (generation.guidance)
    guidance: float = 1.0
    primer_tokens: int = PRIMER_TOKENS  # a primer file's length kept, in tokens (its end)

    def __post_init__(self) -> None:
        given = self.temperature
        if given is not None and not (isinstance(given, (int, float)) and given > 0):
            raise SettingError(
                "the temperature must be greater than 0; greedy decoding takes the likeliest token",
                "temperature",
            )
        check_bounds(self, BOUNDS)
        if self.seconds is not None and self.seconds > self.cap_seconds:
            cap = self.cap_seconds
            raise SettingError(f"{self.seconds:g} seconds asked, over the {cap:g} s cap on a "
                               "piece; max_seconds raises the cap", "max_seconds")  # fmt: skip
        if self.num * (budget := self.token_budget()) > MAX_BATCH_TOKENS:
            raise SettingError(f"{self.num} pieces of up to {budget:,} new tokens are over "
                               f"{MAX_BATCH_TOKENS:,} tokens in one batch", "num")  # fmt: skip
        self._check_constraints()

    def _check_constraints(self) -> None:
        """Parse the constraints now (a bad key fails before any model loads), kept as given."""
        if self.key is not None:
            parse_key(self.key)
        elif self.key_strict:
            raise SettingError("a strict key needs a key to keep to, e.g. D-minor", "key_strict")
        if self.pitch_range is not None:
            self.pitch_range = parse_pitch_range(self.pitch_range)
        if self.instruments is not None:
            self.instruments = instrument_items(self.instruments)
            programs = parse_instruments(self.instruments)
            if self.program is not None and self.program not in programs:
                asked = ", ".join(map(str, self.instruments))
                raise SettingError(f"program {self.program} is not among the instruments "
                                   f"asked ({asked})", "program")  # fmt: skip
        if self.density is not None:
            self.density = parse_density(self.density)
        if self.polyphony is not None:
            self.polyphony = parse_polyphony(self.polyphony)

    @property
    def timed(self) -> bool:
        """The length is in seconds or bars, not tokens."""
        return self.seconds is not None or self.bars is not None

    @property
    def cap_seconds(self) -> float:
        """The longest a piece may be, primer included."""
        return DEFAULT_MAX_SECONDS if self.max_seconds is None else self.max_seconds

    def token_budget(self) -> int:
        """New tokens at most: `tokens`, or for seconds/bars a cap far above the need."""
        if not self.timed:
            return self.tokens
        if self.max_tokens is not None:
            return self.max_tokens
        if self.seconds is not None:
            wanted = self.seconds * TOKENS_PER_SECOND_CAP
        else:
            wanted = min(self.bars * TOKENS_PER_BAR_CAP, self.cap_seconds * TOKENS_PER_SECOND_CAP)
        return min(MAX_NEW_TOKENS, max(MIN_TOKEN_CAP, math.ceil(wanted)))


GenerateOptions = SamplingOptions  # the name before SamplingOptions (public API)


def recorded_sampling(entry: Any) -> dict[str, Any]:
    """A checkpoint's recorded sampling choice, checked (its metadata is hostile until then):
    {} when absent or when its temperature or top-p is not a number within BOUNDS; its other
    keys kept only when of the expected type."""
    if not isinstance(entry, dict):
        return {}
    kept: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        value = entry.get(name)
        if not BOUNDS[name].accepts(value):
            return {}
        kept[name] = float(value)
    if isinstance(entry.get("chosen_by"), str):
        kept["chosen_by"] = entry["chosen_by"][:200]
    accuracy = entry.get("accuracy")
    if Bound(0, 1).accepts(accuracy):
        kept["accuracy"] = float(accuracy)
    candidates = entry.get("candidates")
    if isinstance(candidates, list) and len(candidates) <= 64:
        kept["candidates"] = [c for c in candidates if isinstance(c, dict)]
    return kept


def with_model_defaults(options: SamplingOptions, recorded: dict[str, Any]) -> SamplingOptions:
    """`options` with an unset temperature or top-p filled in: the model's recorded choice
    (`recorded`, as `recorded_sampling` checked it), else the defaults. A copy, so options
    shared by several models take each model's own choice; given values always win."""
    if options.temperature is not None and options.top_p is not None:
        return options
    resolved = copy.copy(options)
    if resolved.temperature is None:
        resolved.temperature = recorded.get("temperature", DEFAULT_TEMPERATURE)
    if resolved.top_p is None:
        resolved.top_p = recorded.get("top_p", DEFAULT_TOP_P)
    return resolved
