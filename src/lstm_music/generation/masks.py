"""Hard constraints on generation: a key's scale, a pitch range, a set of instruments.

They work with any model, trained with controls or not, because they act on what is sampled:
once per generation, the vocabulary is read for what each token holds (its pitches, whether it
is a drum hit, the program it names) and the tokens that break a constraint get -inf logits
before temperature, top-k and top-p (greedy decoding too). Tokens are read with one rule per
kind of tokenizer: the seed's note names and chord normal orders (a chord is allowed only when
all its pitches are), and everywhere else `Kind_value` strings (MidiTok's `Pitch_60`,
`PitchDrum_36`, `NoteOn_60`, `Program_33`, and the grid's `Pitch_60`). Drum hits are not pitches,
and what makes a note a drum hit is where it is: in a stream with instruments, a note belongs to
the program token before it, and after the drums' (-1) the key and the range leave it alone
(the mask follows each piece's current program); in a stream without instruments, every note,
a `PitchDrum` one too, is decoded into the one pitched track, so every note is kept to them.

A hard constraint is hard: one that no token of the model meets (a range outside the model's
pitches, a key with none of its pitches in the range, instruments it has no token for) is
refused before generation; a step where the mask leaves nothing allowed (the model's own
tokens cannot continue within it) ends that piece there, and the piece says so: no note
outside the constraints is ever written. Parsing lives here too, so `SamplingOptions` checks
its fields with the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_music.corpus.store import PAD_ID
from lstm_music.errors import SettingError
from lstm_music.settings import shown
from lstm_music.tokens.instruments import DRUM_PROGRAM, instrument_words, programs_named

if TYPE_CHECKING:
    from typing import Protocol

    class SamplingOptions(Protocol):  # generation.sampling's, which imports this module
        key: str | None
        key_strict: bool
        pitch_range: tuple[int, int] | None
        instruments: tuple[str | int, ...]
        density: str | int | None
        polyphony: Any
        tempo: float | None


_MAJOR, _MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
SCALES: dict[str, tuple[int, ...]] = {  # semitones above the tonic
    "major": _MAJOR, "minor": _MINOR, "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic-minor": (0, 2, 3, 5, 7, 9, 11), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major-pentatonic": (0, 2, 4, 7, 9), "minor-pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}  # fmt: skip
_SCALE_ALIASES = {"ionian": "major", "maj": "major", "aeolian": "minor", "natural-minor": "minor",
                  "min": "minor", "m": "minor", "pentatonic": "major-pentatonic"}  # fmt: skip
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"([A-Ga-g])([#b♯♭]?)[\s_-]*([A-Za-z][A-Za-z\s_-]*)")
_NOTE_RE = re.compile(r"([A-Ga-g])([#b]{0,3})(-?\d{1,2})")  # C4 = 60 (the seed's, music21's)
KEY_EXAMPLES = "D-minor, Bb-major, F#-dorian"

DRUMS = DRUM_PROGRAM  # drums are program -1, as in MidiTok
INSTRUMENT_NAMES = instrument_words()  # the families and their aliases, for messages

_NOTE_KINDS = {"Pitch", "NoteOn", "PitchDrum", "DrumOn"}  # tokens that start a note
_DRUM_KINDS = {"PitchDrum", "DrumOn", "DrumOff"}  # MidiTok's tokens for the drums' notes
_RELATIVE_KINDS = {"PitchIntervalTime", "PitchIntervalChord"}  # a pitch relative to the last
SEED_CHORD_BASE = 60  # the seed decoder writes a chord's pitch classes in octave 4


@dataclass(frozen=True)
class Key:
    """A scale on a tonic: `pitch_classes` are the ones `key_strict` allows."""

    tonic: int  # pitch class, C = 0
    scale: str  # a SCALES name
    name: str  # as shown, e.g. "D minor"

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + step) % 12 for step in SCALES[self.scale])


def parse_key(text: str) -> Key:
    """`D-minor`, `Bb-major`, `F# dorian`, `c-minor`, `Ebm` -> Key; one-line `SettingError` else."""
    match = _KEY_RE.fullmatch(str(text).strip())
    scale = None
    if match:
        name = re.sub(r"[\s_-]+", "-", match.group(3).strip(" _-").lower())
        scale = _SCALE_ALIASES.get(name, name)
    if scale not in SCALES:
        raise SettingError(
            f"key {text!r} not understood: write a tonic and a scale, like {KEY_EXAMPLES} "
            f"(scales: {', '.join(SCALES)})",
            "key",
        )
    letter, accidental = match.group(1).upper(), match.group(2)
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    tonic = (_STEPS[letter] + {"#": 1, "b": -1}.get(accidental, 0)) % 12
    return Key(tonic, scale, f"{letter}{accidental} {scale.replace('-', ' ')}")


def as_text(value: Any) -> str:
    """`str(value)` for parsing; a huge int (str() refuses past 4,300 digits) reads as none."""
    if isinstance(value, int) and not -(10**9) < value < 10**9:
        return "?"
    return str(value)


def note_number(text: str) -> int | None:
    """MIDI number of `60` or of a note name (`C4` = 60, `Bb3`, `F#5`, `C-1` = 0); None if not."""
    text = text.strip()
    if re.fullmatch(r"\d{1,4}", text):  # no int() of thousands of digits
        value = int(text)
    elif match := _NOTE_RE.fullmatch(text):
        letter, accidentals, octave = match.groups()
        shift = accidentals.count("#") - accidentals.count("b")
        value = _STEPS[letter.upper()] + shift + 12 * (int(octave) + 1)
    else:
        return None
    return value if 0 <= value <= 127 else None


def parse_pitch_range(value: str | Sequence[Any]) -> tuple[int, int]:
    """`48..84`, `C3..C6`, `48-84` or (48, 84) -> (low, high), both included."""
    bounds = None
    if isinstance(value, str):
        text = value.strip()
        cuts = (
            [text.split("..", 1)]
            if ".." in text
            else [[text[:i], text[i + 1 :]] for i, char in enumerate(text) if char == "-"]
        )
        for low, high in cuts:  # a "-" may be an octave's sign: the first cut that reads wins
            if (pair := (note_number(low), note_number(high)))[0] is not None and None not in pair:
                bounds = pair
                break
    elif isinstance(value, Sequence) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            bounds = tuple(value) if all(0 <= v <= 127 for v in value) else None
        else:
            bounds = (note_number(as_text(value[0])), note_number(as_text(value[1])))
    if bounds is None or None in bounds or bounds[0] > bounds[1]:
        raise SettingError(
            f"pitch range {shown(value)} not understood: write LOW..HIGH, low first, as MIDI "
            "numbers 0-127 (48..84) or note names (C3..C6, C4 = 60)",
            "pitch_range",
        )
    return int(bounds[0]), int(bounds[1])


def instrument_items(value: str | Iterable[Any]) -> tuple[str | int, ...]:
    """The instruments as given, one item each: "piano, bass" -> ("piano", "bass")."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(item.strip() if isinstance(item, str) else item for item in items)


def programs_of_item(item: str | int) -> tuple[int, ...]:
    """The programs one asked instrument names (a word or a number, -1 drums); () unknown."""
    name = as_text(item).strip()
    if re.fullmatch(r"-?\d+", name):  # no int() of thousands of digits
        return (int(name),) if len(name) <= 4 and -1 <= int(name) <= 127 else ()
    return programs_named(name)


def parse_instruments(value: str | Iterable[Any]) -> frozenset[int]:
    """Programs of `piano,bass,drums` (GM families, drums = -1) or of program numbers 0-127."""
    programs: set[int] = set()
    items = instrument_items(value)
    for item in items:
        named = programs_of_item(item)
        if named:
            programs.update(named)
        else:
            raise SettingError(
                f"instrument {shown(item)} unknown: use General MIDI programs 0-127, -1 for drums, "
                f"or {', '.join(INSTRUMENT_NAMES)}",
                "instruments",
            )
    if not programs:
        raise SettingError("name at least one instrument", "instruments")
    return frozenset(programs)


@dataclass(frozen=True)
class TokenFacts:
    """What one token holds, as far as the constraints care."""

    pitches: tuple[int, ...] = ()  # the notes it starts (a seed chord: several)
    drum: bool = False  # a drum token (`PitchDrum_36`): a drum hit after a drum program token
    program: int | None = None  # the General MIDI program it names (-1: drums)
    relative: bool = False  # a pitch given relative to another (cannot be checked alone)


def _seed_facts(token: str) -> TokenFacts:
    """The seed's tokens, as its decoder renders them: a note name, or a chord's pitch classes."""
    from lstm_music.tokens.seed import parse_pitch_name
    from lstm_music.tokens.seed.music21_rules import CHORD_PATTERN

    if CHORD_PATTERN.fullmatch(token):
        classes = [int(part) for part in token.split(".")]
        if all(pc <= 11 for pc in classes):
            return TokenFacts(tuple(SEED_CHORD_BASE + pc for pc in dict.fromkeys(classes)))
        return TokenFacts()  # the decoder skips it: no notes
    midi = parse_pitch_name(token)
    return TokenFacts(() if midi is None else (midi,))


def _kind_value_facts(token: str) -> TokenFacts:
    """`Kind_value` tokens (MidiTok's and the grid's): pitches, drum tokens, programs."""
    kind, _, value = token.partition("_")
    if not re.fullmatch(r"-?\d{1,9}", value):
        return TokenFacts(relative=kind in _RELATIVE_KINDS)
    number = int(value)
    drum = kind in _DRUM_KINDS
    if kind in _NOTE_KINDS and 0 <= number <= 127:
        return TokenFacts((number,), drum=drum)
    if kind == "Program":
        return TokenFacts(program=number)
    return TokenFacts(drum=drum, relative=kind in _RELATIVE_KINDS)


def token_facts(vocabulary: Sequence[str], tokenizer_name: str) -> list[TokenFacts]:
    """What each token of a model's vocabulary holds, by the rule of its tokenizer."""
    read = _seed_facts if tokenizer_name == "seed" else _kind_value_facts
    return [read(token) if isinstance(token, str) else TokenFacts() for token in vocabulary]


NO_PROGRAM = -1000  # in `TokenMask.programs`: the token names no program


@dataclass
class TokenMask:
    """The tokens a generation may sample, and the steps where it had to sample freely.

    In a stream with instruments, a note belongs to the program token before it: after the
    drums' (-1) its tokens are drum hits, which no key or range concerns (`drum_allowed`)."""

    allowed: np.ndarray  # (V,) bool: while the current instrument is pitched (or there is none)
    label: str  # what constrains, e.g. "key D minor and pitch range 48..84"
    drum_allowed: np.ndarray | None = None  # (V,) bool: after a drum program token
    programs: np.ndarray | None = None  # (V,) the program each id names, NO_PROGRAM if none
    drumming: Any = False  # per piece (B,): the current program is the drums'
    ended: np.ndarray | None = None  # (B,) the step a piece ended at (nothing allowed), -1
    steps: int = 0  # steps masked so far
    # notes before any program token: the decoder gives them program 0, so with an instrument
    # set without it they are forbidden until a piece has named its instrument
    unnamed_notes: np.ndarray | None = None  # (V,) bool: note tokens
    named: Any = True  # per piece (B,): a program token came already

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """-inf where the mask forbids. A row left with nothing ends its piece: from then on it
        gets only <pad> (which is never sampled otherwise), and the piece is cut there."""
        if self.ended is None:
            self.ended = np.full(len(logits), -1, dtype=np.int64)
            self.drumming = np.broadcast_to(np.asarray(self.drumming), len(logits)).copy()
            self.named = np.broadcast_to(np.asarray(self.named), len(logits)).copy()
        allowed = self.allowed
        if self.drum_allowed is not None and self.drumming.any():
            allowed = np.where(self.drumming[:, None], self.drum_allowed, allowed)
        if self.unnamed_notes is not None and not self.named.all():
            allowed = np.where(self.named[:, None], allowed, allowed & ~self.unnamed_notes)
        masked = np.where(allowed, logits, -np.inf)
        empty = ~np.isfinite(masked).any(axis=-1)  # (B,): nothing with nonzero probability
        self.ended[empty & (self.ended < 0)] = self.steps
        over = self.ended >= 0
        if over.any():
            masked[over] = -np.inf
            masked[over, PAD_ID] = 0.0
        self.steps += 1
        return masked

    def observe(self, ids: np.ndarray) -> None:
        """The ids just picked (B,): a program token sets its piece's instrument."""
        if self.programs is None:
            return
        named = self.programs[ids]
        changed = named != NO_PROGRAM
        self.drumming[changed] = named[changed] == DRUMS
        self.named = self.named | changed

    def warnings(self, row: int) -> list[str]:
        """One line per thing piece `row` should be told."""
        if self.ended is None or self.ended[row] < 0:
            return []
        return [f"ended after {int(self.ended[row]):,} new tokens: the {self.label} left "
                "nothing the model could write next"]  # fmt: skip


KEY_CONTROL_REFUSED = (
    "a key alone is a soft control, for a model trained with controls including key (this one "
    "was not); a strict key (key_strict) keeps every pitch of any model in the key's scale"
)


@dataclass(frozen=True)
class _Rule:
    """One constraint: the tokens it concerns, which of them pass, what goes with them."""

    label: str  # e.g. "key D minor"
    concerns: Callable[[TokenFacts], bool]
    passes: Callable[[TokenFacts], bool]
    also: Callable[[TokenFacts], bool]  # tokens forbidden too when the rule applies
    what: str  # what the concerned tokens hold, for a note: "pitches", "instruments"
    setting: str  # the option that asked for it, named by a refusal


def _is_pitched(fact: TokenFacts) -> bool:
    """A note token: a drum token too, which is a pitch unless a drum program token precedes."""
    return bool(fact.pitches)


def _is_relative(fact: TokenFacts) -> bool:
    return fact.relative  # a pitch relative to the last: no mask can check it alone


def _rules(options: SamplingOptions) -> list[_Rule]:
    """The constraints asked, range before key (a key is kept to within the range)."""
    rules = []
    if options.pitch_range:
        low, high = parse_pitch_range(options.pitch_range)
        within = lambda f: all(low <= p <= high for p in f.pitches)  # noqa: E731
        label = f"pitch range {low}..{high}"
        rules.append(_Rule(label, _is_pitched, within, _is_relative, "pitches", "pitch_range"))
    if options.key_strict:
        key = parse_key(options.key)
        in_scale = lambda f: all(p % 12 in key.pitch_classes for p in f.pitches)  # noqa: E731
        rules.append(
            _Rule(f"key {key.name}", _is_pitched, in_scale, _is_relative, "pitches", "key_strict")
        )
    if options.instruments:
        programs = parse_instruments(options.instruments)
        label = "instruments " + ", ".join(str(item) for item in options.instruments)
        named = lambda f: f.program is not None  # noqa: E731
        asked = lambda f: f.program in programs  # noqa: E731
        drum_hit = lambda f: f.drum and DRUMS not in programs  # noqa: E731
        rules.append(_Rule(label, named, asked, drum_hit, "instruments", "instruments"))
    return rules


def token_mask(
    vocabulary: Sequence[str],
    tokenizer_name: str,
    options: SamplingOptions,
    controls: Collection[str] = (),
) -> TokenMask | None:
    """The generation's mask over `vocabulary`, or None when nothing is constrained.

    Refused: an instrument set for a model whose tokens name no instruments, and a key without
    `key_strict` unless the model understands the key control (`controls`, the names
    `tokens.understood_controls` reads off its tokenizer: generation.controls forces it)."""
    if options.key is not None and not options.key_strict and "key" not in controls:
        raise SettingError(KEY_CONTROL_REFUSED, "key")
    rules = _rules(options)
    if not rules:
        return None
    facts = token_facts(vocabulary, tokenizer_name)
    if options.instruments and not any(fact.program is not None for fact in facts):
        raise SettingError("this model's tokens name no instruments", "instruments")
    if (options.key_strict or options.pitch_range) and not any(map(_is_pitched, facts)):
        setting = "pitch_range" if options.pitch_range else "key_strict"
        raise SettingError("this model's tokens hold no pitches to keep to", setting)
    allowed, drum_allowed = np.ones(len(facts), dtype=bool), np.ones(len(facts), dtype=bool)
    applied: list[str] = []
    for rule in rules:
        concerned = [i for i, fact in enumerate(facts) if allowed[i] and rule.concerns(fact)]
        failing = [i for i in concerned if not rule.passes(facts[i])]
        if len(failing) == len(concerned):  # nothing can meet it: refused before any work
            raise SettingError(_none_left(rule, [facts[i] for i in concerned], applied),
                               rule.setting)  # fmt: skip
        forbidden = failing + [i for i, fact in enumerate(facts) if rule.also(fact)]
        allowed[forbidden] = False
        if rule.what != "pitches":  # drum hits are no pitches: only instruments rule them
            drum_allowed[forbidden] = False
        applied.append(rule.label)
    mask = TokenMask(allowed, " and ".join(applied))
    if any(fact.program is not None for fact in facts):  # a stream with instruments
        mask.drum_allowed = drum_allowed
        mask.programs = np.array([NO_PROGRAM if f.program is None else f.program for f in facts])
        primer = [p for p in map(_kind_value_facts, options.primer) if p.program is not None]
        mask.drumming = bool(primer) and primer[-1].program == DRUMS  # where the primer ends
        if options.instruments and 0 not in parse_instruments(options.instruments):
            mask.unnamed_notes = np.array([_is_pitched(fact) for fact in facts])
            mask.named = bool(primer)
    return mask


def _none_left(rule: _Rule, concerned: list[TokenFacts], applied: list[str]) -> str:
    """The refusal of a constraint that no token of the model (still allowed) meets."""
    if rule.what != "pitches":
        return f"this model has tokens for none of the {rule.label}: nothing could be written"
    pitches = [p for fact in concerned for p in fact.pitches]
    within = f" within the {' and '.join(applied)}" if applied else ""
    span = f" (its pitches{' there' if applied else ''}: {min(pitches)}..{max(pitches)})"
    return f"the {rule.label}{within} allows none of this model's pitches{span if pitches else ''}"
