"""Attribute controls: MidiTok's bar-level control tokens, written into the training tokens.

A model trained with controls reads, after each bar's `Bar` (and `TimeSig`) token, what the bar
holds: its onset polyphony (`ACBarOnsetPolyphonyMin_1 ACBarOnsetPolyphonyMax_3`), its pitch
classes (`ACBarPitchClass_2 ...`, ascending) and its note density (`ACBarNoteDensity_9`).
Generation then forces such tokens after each sampled bar header to steer the bar
(generation.controls). The names users give them: `polyphony`, `key`, `density`.

What is MidiTok's and what is ours:
- The values are computed by MidiTok's own classes (`BarOnsetPolyphony`, `BarPitchClass`,
  `BarNoteDensity`), and sit where MidiTok's REMI puts them (tested against
  `encode(..., attribute_controls_indexes=...)`).
- They are computed on every bar, then dropped at random per bar and per control (and for a
  share of pieces, all of them): MidiTok's way of choosing bars (`create_random_ac_indexes`
  with a subset of bars) computes a bar's values from every note since the previous chosen bar
  in MidiTok 3.1, so a bar after a skipped one gets wrong densities and pitch classes.
- MidiTok turns its controls off for one token stream with programs (the `instruments` track
  mode: its tokens would not say which track they describe); here they describe all the pitched
  instruments together (drums are not counted), so that mode gets them too.
- MidiTok has no instrument control; ours (`instruments`, for the `instruments` track mode) is
  one `ACPieceProgram_<program>` token per instrument the piece plays (drums -1), in program
  order, at the very start of the piece: generation forces the asked instruments there, and the
  mask on sampled tokens (generation.masks) keeps the others out.
- Control tokens are inputs only: training never asks the model to predict them
  (training.batches), since generation forces them and never samples them.

The dropout is seeded by the piece's own tokens, so a file always gives the same tokens (the
corpus cache and reruns rely on it). The understood controls, the dropout and the density
levels (`density_levels`: the corpus's 10th, 50th and 90th percentiles of notes per bar, for
`low`, `medium`, `high`) and, with the instruments control, the corpus's programs by number of
notes (`programs`: which program a family word such as "strings" stands for) live in the
tokenizer's parameters: corpus.json and every checkpoint record them (`understood_controls`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lstm_music.settings import shown
from lstm_music.tokens.base import TokenizerError, TokenizerSettingError, import_miditok

# user-facing name -> MidiTok's flag (None: ours) and token kind prefix; the bar controls in
# MidiTok's order within a bar, then the piece's
CONTROLS = {
    "polyphony": ("ac_polyphony_bar", "ACBarOnsetPolyphony"),
    "key": ("ac_pitch_class_bar", "ACBarPitchClass"),
    "density": ("ac_note_density_bar", "ACBarNoteDensity"),
    "instruments": (None, "ACPieceProgram"),
}
CONTROL_NAMES = tuple(CONTROLS)
BAR_CONTROLS = ("polyphony", "key", "density")
INSTRUMENTS = "instruments"  # the piece-level control, for the instruments track mode only
DEFAULT_WORD = "default"  # all of them that fit the track mode
CONTROLS_TOKENIZERS = ("remi",)  # the MidiTok tokenizers with Bar tokens to place them after
# MidiTok's limits, set in the config: 32 notes a bar (its default 18 lumps a four-voice chorale
# bar of sixteenths with a dense one) and up to 8 notes at once
DENSITY_MAX, POLYPHONY_MIN, POLYPHONY_MAX = 32, 1, 8
KEEP_BAR = 0.5  # each control at each bar is kept with this probability
KEEP_PIECE = 0.75  # the share of pieces with any controls: the rest train generation without
DENSITY_QUANTILES = (0.1, 0.5, 0.9)  # low, medium, high: a bar clearly sparser or denser
DENSITY_WORDS = ("low", "medium", "high")
AC_PREFIX = "AC"  # every MidiTok attribute control token starts so


def parse_controls(value: str | Iterable[str] | None, instruments: bool = False) -> list[str]:
    """`density,polyphony,key,instruments` or `default` -> the names in order; [] for none.

    `instruments`: the pieces keep their instruments (the track mode of that name), which the
    instruments control needs; `default` is every control that fits the mode."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = {str(item).strip().lower() for item in items} - {""}
    if DEFAULT_WORD in names:
        names = (names - {DEFAULT_WORD}) | set(BAR_CONTROLS) | ({INSTRUMENTS} if instruments
                                                                else set())  # fmt: skip
    unknown = sorted(names - set(CONTROL_NAMES))
    if unknown:
        raise TokenizerSettingError(
            f"unknown control {', '.join(map(shown, unknown))}: choose from "
            f"{', '.join(CONTROL_NAMES)} or {DEFAULT_WORD}",
            "controls",
        )
    if INSTRUMENTS in names and not instruments:
        raise TokenizerSettingError(
            "the instruments control needs pieces that keep their instruments "
            "(the 'instruments' track mode)",
            "controls",
        )
    return [name for name in CONTROL_NAMES if name in names]


def controls_params(names: Sequence[str]) -> dict[str, Any]:
    """The tokenizer's `controls` parameter for prepare: names and dropout (levels come later)."""
    ordered = [name for name in CONTROL_NAMES if name in names]
    return {"names": ordered, "keep_bar": KEEP_BAR, "keep_piece": KEEP_PIECE}


def with_corpus_levels(tokenizer_config: dict[str, Any], counts: dict[str, int]) -> dict:
    """The tokenizer config with what the controls take from the corpus: `density_levels`
    (with density tokens) and `programs` (with the instruments control)."""
    params = tokenizer_config.get("params", {})
    if "controls" not in params:
        return tokenizer_config
    controls = dict(params["controls"])
    levels = density_levels(counts)
    if levels is not None:
        controls["density_levels"] = levels
    if INSTRUMENTS in controls.get("names", []):
        controls["programs"] = programs_by_notes(counts)
    return {**tokenizer_config, "params": {**params, "controls": controls}}


def config_with_controls(config: dict[str, Any], names: Sequence[str], one_stream: bool) -> dict:
    """A MidiTok config (JSON) with the controls' limits, and their ac_* flags on where MidiTok
    allows them (not with one stream of programs, where it would turn them off with a warning)."""
    config = {**config, "ac_note_density_bar_max": DENSITY_MAX}
    config.update(ac_polyphony_min=POLYPHONY_MIN, ac_polyphony_max=POLYPHONY_MAX)
    for name in names if not one_stream else ():
        flag = CONTROLS[name][0]
        if flag is not None:
            config[flag] = True
    return config


def check_controls(controls: Any) -> None:
    """A `TokenizerError` unless `controls` is a sane `controls` parameter (from a stranger)."""
    known = {"names", "keep_bar", "keep_piece", "density_levels", "programs"}
    if not isinstance(controls, dict) or set(controls) - known:
        raise TokenizerError("the tokenizer's controls must map names, keep_bar, keep_piece")
    names = controls.get("names")
    if not (isinstance(names, list) and names and len(names) <= len(CONTROL_NAMES)
            and all(isinstance(n, str) and n in CONTROLS for n in names)):  # fmt: skip
        raise TokenizerError(f"the tokenizer's control names must be some of {CONTROL_NAMES}")
    for key in ("keep_bar", "keep_piece"):
        value = controls.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise TokenizerError(f"the tokenizer's controls {key} must be 0 to 1, not {value!r}")
    levels = controls.get("density_levels")
    if levels is not None and not (
        isinstance(levels, list) and len(levels) == len(DENSITY_WORDS)
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1024 for v in levels)
    ):  # fmt: skip
        raise TokenizerError(f"the tokenizer's density_levels must be 3 numbers, not {levels!r}")
    programs = controls.get("programs", [])
    if not (isinstance(programs, list) and len(programs) <= 129 and all(
        isinstance(p, int) and not isinstance(p, bool) and -1 <= p <= 127 for p in programs
    )):  # fmt: skip
        raise TokenizerError("the tokenizer's programs must be General MIDI programs (-1 drums)")


def understood_controls(tokenizer_config: dict[str, Any]) -> tuple[str, ...]:
    """The controls a model or corpus understands, from its tokenizer config (none: ())."""
    params = tokenizer_config.get("params") if isinstance(tokenizer_config, dict) else None
    controls = params.get("controls") if isinstance(params, dict) else None
    names = controls.get("names", []) if isinstance(controls, dict) else []
    return tuple(name for name in CONTROL_NAMES if name in names)


def attribute_controls(names: Sequence[str], config: Any) -> list[Any]:
    """MidiTok's control objects for `names`, in MidiTok's order, with the config's limits."""

    ac = import_miditok().attribute_controls
    made = {
        "polyphony": lambda: ac.BarOnsetPolyphony(config.ac_polyphony_min, config.ac_polyphony_max),
        "key": ac.BarPitchClass,
        "density": lambda: ac.BarNoteDensity(config.ac_note_density_bar_max),
    }
    return [made[name]() for name in BAR_CONTROLS if name in names]


def control_tokens(controls: Sequence[Any], instruments: bool = False) -> list[str]:
    """Every token the controls can write (for the vocabulary): the bar controls' (MidiTok's
    objects), and with `instruments` one per program and the drums."""
    tokens = [token for control in controls for token in control.tokens]
    return tokens + ([program_token(p) for p in range(-1, 128)] if instruments else [])


def program_token(program: int) -> str:
    """The instruments control's token of one program (-1: drums)."""
    return f"{CONTROLS[INSTRUMENTS][1]}_{program}"


def piece_programs(score: Any) -> list[str]:
    """The instruments control's tokens for a score: each program that has notes, in order."""
    from lstm_music.tokens.instruments import instrument_of

    programs = sorted({instrument_of(track) for track in score.tracks if len(track.notes)})
    return [program_token(program) for program in programs]


def bar_controls(score: Any, controls: Sequence[Any]) -> dict[int, list[list[str]]]:
    """Per bar index, one token group per control (in order) for a preprocessed score.

    Computed on the pitched tracks merged into one (drums are not pitches or harmony); a bar
    MidiTok computes nothing for (empty, or a lone note) gets no group."""
    import symusic

    utils = import_miditok().utils
    merged = symusic.Track("controls", 0, False)
    for track in score.tracks:
        if not track.is_drum:
            merged.notes.extend(track.notes)
    if not len(merged.notes):
        return {}
    merged.notes.sort()
    bars = utils.get_bars_ticks(score, only_notes_onsets=True)
    beats = utils.get_beats_ticks(score, only_notes_onsets=True)
    index = {tick: i for i, tick in enumerate(bars)}
    groups: dict[int, list[list[str]]] = {}
    for control in controls:
        by_bar: dict[int, list[str]] = {}
        for event in control.compute(merged, score.tpq, bars, beats, list(range(len(bars)))):
            by_bar.setdefault(index[event.time], []).append(f"{event.type_}_{event.value}")
        for bar, tokens in by_bar.items():
            groups.setdefault(bar, []).append(tokens)
    return groups


def _header_ends(tokens: Sequence[str]) -> list[int]:
    """Per bar, the position after its `Bar` token and the `TimeSig` token that follows it."""
    ends = []
    for i, token in enumerate(tokens):
        if token.startswith("Bar_"):
            ends.append(i + 2 if i + 1 < len(tokens) and tokens[i + 1].startswith("TimeSig_")
                        else i + 1)  # fmt: skip
    return ends


def _rng_of(tokens: Sequence[str]) -> np.random.Generator:
    digest = hashlib.sha256("\n".join(tokens).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def insert_controls(
    tokens: list[str],
    groups: dict[int, list[list[str]]],
    keep_bar: float,
    keep_piece: float,
    piece_group: Sequence[str] = (),
) -> list[str]:
    """The tokens with the piece's group (the instruments) first and each bar's control groups
    after its header, each kept with probability `keep_bar` (the piece's too)."""
    rng = _rng_of(tokens)
    if not (groups or piece_group) or rng.random() >= keep_piece:
        return tokens
    out: list[str] = []
    start = 0
    if piece_group and rng.random() < keep_bar:
        out += piece_group
    for bar, end in enumerate(_header_ends(tokens)):
        out += tokens[start:end]
        start = end
        for group in groups.get(bar, []):
            if rng.random() < keep_bar:
                out += group
    return out + tokens[start:]


def is_control(token: str) -> bool:
    return token.startswith(AC_PREFIX)


def control_mask(vocabulary: Sequence[Any]) -> np.ndarray:
    """(V,) bool: which ids of a vocabulary are control tokens (inputs only, never sampled)."""
    return np.array([isinstance(t, str) and is_control(t) for t in vocabulary], dtype=bool)


def transpose_control(token: str, semitones: int) -> str:
    """A pitch class moves with the notes; density and polyphony stay."""
    kind, _, value = token.partition("_")
    if kind == CONTROLS["key"][1] and value.isdigit():
        return f"{kind}_{(int(value) + semitones) % 12}"
    return token


def programs_by_notes(counts: dict[str, int]) -> list[int]:
    """The corpus's programs, most notes first (MidiTok writes a `Program` token per note)."""
    found = []
    for token, count in counts.items():
        match = re.fullmatch(r"Program_(-?\d+)", token)
        if match and count > 0 and -1 <= int(match.group(1)) <= 127:
            found.append((-count, int(match.group(1))))
    return [program for _, program in sorted(found)]


def density_levels(counts: dict[str, int]) -> list[int] | None:
    """Notes per bar at DENSITY_QUANTILES, from how often each density token occurs; None when
    the corpus has none. The top token (`32+`) counts as its number."""
    prefix = CONTROLS["density"][1] + "_"
    values, weights = [], []
    for token, count in counts.items():
        if token.startswith(prefix) and count > 0:
            match = re.fullmatch(r"(\d+)\+?", token[len(prefix) :])
            if match:
                values.append(int(match.group(1)))
                weights.append(count)
    if not values:
        return None
    order = np.argsort(values)
    values, cumulative = np.array(values)[order], np.cumsum(np.array(weights)[order])
    picks = [values[np.searchsorted(cumulative, q * cumulative[-1])] for q in DENSITY_QUANTILES]
    return [int(v) for v in picks]
