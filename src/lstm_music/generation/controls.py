"""Soft controls at generation: attribute control tokens forced after each bar header.

A model prepared with controls (tokens.controls) learnt that after a bar's `Bar` token (and its
`TimeSig` token, when the tokenizer writes time signatures) come tokens saying what the bar
holds. Asking for a density, a polyphony or a key, the generator feeds those tokens to the
model as input right after each bar header it samples (teacher-forced, never sampled), in the
order training saw them (polyphony, pitch classes, density), then samples on. Control tokens
are never sampled: a model asked for nothing writes no controls, as a quarter of its training
pieces had none.

- density `low`/`medium`/`high`: the training corpus's 10th, 50th and 90th percentiles of
  notes per bar, recorded by `prepare` (`density_levels`); without them 1/8, 1/4 and 1/2 of the
  tokenizer's top density. A number N is N notes per bar (the top token means "N or more").
- polyphony N: at most N notes at once, at least the tokenizer's least (1); LOW..HIGH both.
- key: the scale's pitch classes (ascending) as the bar's pitch-class control; `key_strict`
  adds the mask that forbids other pitches (generation.masks).
- tempo: for a tokenizer with tempo tokens, every tempo token sampled is the nearest to the
  asked one; the MIDI tempo is set in any case (generation.generate).

- instruments: for a model trained with the instruments control, the asked instruments' tokens
  are forced at the start of the piece (a family word such as "strings" stands for its program
  with the most notes in the training corpus); for every model the mask (generation.masks)
  keeps the other instruments out.

A control the model was not trained with is refused with one line naming what it understands
(instruments aside: without the control they are the mask alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_music.errors import SettingError
from lstm_music.generation.masks import as_text
from lstm_music.settings import shown
from lstm_music.tokens.controls import (
    CONTROLS,
    DENSITY_WORDS,
    INSTRUMENTS,
    POLYPHONY_MAX,
    POLYPHONY_MIN,
    control_mask,
    program_token,
    understood_controls,
)

if TYPE_CHECKING:
    from lstm_music.generation.masks import SamplingOptions

DENSITY_FALLBACK = (1 / 8, 1 / 4, 1 / 2)  # of the top density, without the corpus's levels
MAX_DENSITY = 1024


def parse_density(value: Any) -> str | int:
    """`low`, `medium`, `high` or a number of notes per bar; a one-line `SettingError` else."""
    text = as_text(value).strip().lower()
    if text in DENSITY_WORDS:
        return text
    if re.fullmatch(r"\d{1,5}", text) and int(text) <= MAX_DENSITY and not isinstance(value, bool):
        return int(text)
    raise SettingError(
        f"density {shown(value)} not understood: low, medium, high or notes per bar "
        f"(0-{MAX_DENSITY})",
        "density",
    )


def parse_polyphony(value: Any) -> tuple[int, int]:
    """`3` (at most 3 notes at once), `2..4` or (2, 4) -> (least, most)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        text = f"{as_text(value[0])}..{as_text(value[1])}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{POLYPHONY_MIN}..{as_text(value)}"
    else:
        text = as_text(value).strip()
    match = re.fullmatch(r"(?:(\d{1,4})\s*(?:\.\.|-)\s*)?(\d{1,4})", text)
    low, high = (int(match.group(1) or POLYPHONY_MIN), int(match.group(2))) if match else (0, 0)
    if not 1 <= low <= high:
        raise SettingError(
            f"polyphony {shown(value)} not understood: notes at once, at most N (3) or "
            "LOW..HIGH (2..4)",
            "polyphony",
        )
    return low, high


def asked_controls(options: SamplingOptions, understood: tuple[str, ...]) -> list[str]:
    """The soft controls the options ask for. A key with `key_strict` alone is only a mask when
    the model has no key control."""
    asked = []
    if options.polyphony is not None:
        asked.append("polyphony")
    if options.key is not None and (not options.key_strict or "key" in understood):
        asked.append("key")
    if options.density is not None:
        asked.append("density")
    if options.instruments and INSTRUMENTS in understood:  # else the mask alone
        asked.append(INSTRUMENTS)
    return asked


def refuse_unknown(asked: list[str], understood: tuple[str, ...]) -> None:
    """One line for the first asked control the model was not trained with."""
    for name in asked:
        if name not in understood:
            knows = (f"understands {', '.join(understood)}" if understood
                     else "was trained without controls")  # fmt: skip
            also = ("; a strict key (key_strict) keeps every pitch of any model in the key's "
                    "scale") if name == "key" else ""  # fmt: skip
            raise SettingError(f"{name} is a control for a model trained with controls "
                               f"including {name}; this one {knows}{also}", name)  # fmt: skip


@dataclass
class ControlPlan:
    """What the generation forces and never samples, and each piece's queue of forced ids."""

    bar_ids: list[int]  # forced after each bar header
    header_end: np.ndarray  # (V,) bool: the token that ends a bar header
    banned: np.ndarray  # (V,) bool: never sampled (control tokens, other tempos)
    label: str = ""  # what is asked, e.g. "density 9 and key D minor"
    queues: list[list[int]] = field(default_factory=list)
    start_ids: list[int] = field(default_factory=list)  # forced first (the instruments)

    @property
    def steers(self) -> bool:
        """Whether anything is forced (not only banned), for guidance to push."""
        return bool(self.bar_ids or self.start_ids)

    def start(self, num: int, last: int | None, opened: bool = False) -> None:
        """One queue per piece, opening with the piece's controls unless the primer already
        did (`opened`); a primer ending on a bar header has its bar's controls next."""
        pending = last is not None and bool(self.bar_ids) and bool(self.header_end[last])
        first = ([] if opened else self.start_ids) + (self.bar_ids if pending else [])
        self.queues = [list(first) for _ in range(num)]

    def force(self, picks: np.ndarray) -> np.ndarray:
        """The sampled ids (B,), a queued forced id replacing each piece's pick; a bar header
        just completed queues the bar's controls."""
        if not self.queues:
            self.queues = [[] for _ in range(len(picks))]
        picks = picks.copy()
        for row, queue in enumerate(self.queues):
            if queue:
                picks[row] = queue.pop(0)
            elif self.bar_ids and self.header_end[picks[row]]:
                queue.extend(self.bar_ids)
        return picks


def control_plan(
    vocabulary: list[str], tokenizer_config: dict, options: SamplingOptions
) -> ControlPlan | None:
    """The plan for these options (None when nothing is forced or banned); refusals first."""
    understood = understood_controls(tokenizer_config)
    asked = asked_controls(options, understood)
    refuse_unknown(asked, understood)
    index = {token: i for i, token in enumerate(vocabulary)}
    banned = control_mask(vocabulary)
    if options.tempo is not None:
        banned |= _other_tempos(vocabulary, options.tempo)
    if not (asked or banned.any()):
        return None
    tokens = _bar_tokens(asked, tokenizer_config, options)
    first = _instrument_tokens(tokenizer_config, options) if INSTRUMENTS in asked else []
    missing = [token for token in first + tokens if token not in index]
    if missing:  # a corpus's vocabulary holds every control token: a damaged model
        raise SettingError(f"this model has no token {missing[0]} for the control", asked[0])
    config = tokenizer_config.get("params", {}).get("config", {})
    header = "TimeSig_" if config.get("use_time_signatures") else "Bar_"
    header_end = np.array([isinstance(t, str) and t.startswith(header) for t in vocabulary])
    label = _label(asked, first + tokens)
    return ControlPlan([index[t] for t in tokens], header_end, banned, label,
                       start_ids=[index[t] for t in first])  # fmt: skip


def _instrument_tokens(config: dict, options: SamplingOptions) -> list[str]:
    """The instruments control's tokens for the asked instruments, in program order: a word
    naming one program is that program; a family, the family's program with the most notes
    in the training corpus (else its first)."""
    from lstm_music.generation.masks import instrument_items, programs_of_item

    preferred = config.get("params", {}).get("controls", {}).get("programs", [])
    chosen = set()
    for item in instrument_items(options.instruments):
        named = programs_of_item(item)  # unknown ones are refused by the mask
        if named:
            chosen.add(next((p for p in preferred if p in named), named[0]))
    return [program_token(program) for program in sorted(chosen)]


def _other_tempos(vocabulary: list[str], tempo: float) -> np.ndarray:
    """(V,) True for tempo tokens other than the nearest to `tempo` (none without them)."""
    values = np.full(len(vocabulary), np.nan)
    for i, token in enumerate(vocabulary):
        kind, _, value = str(token).partition("_")
        if kind == "Tempo" and re.fullmatch(r"\d+(\.\d+)?", value):
            values[i] = float(value)
    if np.isnan(values).all():
        return np.zeros(len(vocabulary), dtype=bool)
    nearest = int(np.nanargmin(np.abs(values - tempo)))
    other = ~np.isnan(values)
    other[nearest] = False
    return other


def _bar_tokens(asked: list[str], config: dict, options: SamplingOptions) -> list[str]:
    """The tokens forced after each bar header, in training's order."""
    from lstm_music.generation.masks import parse_key

    ac_config = config.get("params", {}).get("config", {})
    controls = config.get("params", {}).get("controls", {})
    tokens: list[str] = []
    if "polyphony" in asked:
        low, high = parse_polyphony(options.polyphony)
        least = ac_config.get("ac_polyphony_min", POLYPHONY_MIN)
        most = ac_config.get("ac_polyphony_max", POLYPHONY_MAX)
        if high > most:
            raise SettingError(f"this model's polyphony control goes up to {most} notes at once",
                               "polyphony")  # fmt: skip
        kind = CONTROLS["polyphony"][1]
        tokens += [f"{kind}Min_{max(low, least)}", f"{kind}Max_{max(high, least)}"]
    if "key" in asked:
        key = parse_key(options.key)
        tokens += [f"{CONTROLS['key'][1]}_{pc}" for pc in sorted(key.pitch_classes)]
    if "density" in asked:
        top = int(ac_config.get("ac_note_density_bar_max", 18))
        density = parse_density(options.density)
        if isinstance(density, str):
            levels = controls.get("density_levels") or [
                max(1, round(top * share)) for share in DENSITY_FALLBACK
            ]
            density = levels[DENSITY_WORDS.index(density)]
        value = f"{top}+" if density >= top else str(density)
        tokens.append(f"{CONTROLS['density'][1]}_{value}")
    return tokens


def _label(asked: list[str], tokens: list[str]) -> str:
    return " and ".join(asked) + (f" ({' '.join(tokens)})" if tokens else "")
