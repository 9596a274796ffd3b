"""MidiTok's tokenizers (REMI, TSD, MIDI-Like, Structured) behind our `Tokenizer` interface.

The full MidiTok `TokenizerConfig` is stored as JSON in the corpus, so the tokenizer that decodes
generated tokens later is exactly the one that encoded the training data. A config with
`Program` tokens in one stream (`instruments_config`, the `instruments` track mode) keeps every
track's instrument; any other reads one merged track.
"""

from __future__ import annotations

import math
from typing import Any

import symusic

from lstm_music.tokens import controls as ac
from lstm_music.tokens.base import (
    Tokenizer,
    TokenizerError,
    TokenizerSettingError,
    import_miditok,
)
from lstm_music.tokens.instruments import DRUM_PROGRAM, PROGRAM_SETTINGS

# token kinds whose value is a MIDI pitch; drums have kinds of their own (PitchDrum, DrumOn,
# DrumOff), so transposing these leaves the drums alone
PITCH_KINDS = {"Pitch", "NoteOn", "NoteOff"}
_CLASSES = {"remi": "REMI", "tsd": "TSD", "midilike": "MIDILike", "structured": "Structured"}
# Bounds on a stored MidiTok config (corpora and checkpoints come from strangers): beat_res
# {"0_4000": 480} made MidiTok spend 11 s and 1.5 GB building 1.9 M durations before failing.
# Ours use 8 positions per beat over 12 beats and about 2,600 tokens: far inside these.
MAX_BEATS, MAX_RESOLUTION, MAX_RANGES = 64, 96, 16  # beat_res: beats covered, steps per beat
MAX_VOCABULARY = 100_000  # the estimated vocabulary MidiTok would build
MAX_MAGNITUDE = 100_000  # any other number in the config (pitch bends go to 8,191)
MAX_ITEMS = 256  # any list or map in the config (programs: 129)
_SMALL = {  # whole-number parameters that set how many tokens MidiTok makes: (low, high)
    "num_velocities": (1, 127), "num_tempos": (1, 1024), "control_change_n_bins": (1, 128),
    "max_pitch_interval": (0, 127), "ac_polyphony_max": (0, 128), "ac_polyphony_min": (0, 128),
    "ac_note_density_track_max": (0, 1024), "ac_note_density_bar_max": (0, 1024),
    "ac_repetition_track_num_bins": (1, 1024), "ac_repetition_track_num_consec_bars": (1, 1024),
}  # fmt: skip
_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_numbers(value: Any, where: str = "config") -> None:
    """Every number finite and of sane size, every list and map short (iteratively)."""
    stack = [(value, where)]
    while stack:
        item, place = stack.pop()
        if isinstance(item, float) and not math.isfinite(item) or (
            isinstance(item, (int, float)) and not isinstance(item, bool)
            and abs(item) > MAX_MAGNITUDE
        ):  # fmt: skip
            raise TokenizerError(f"MidiTok {place} is out of range: {item!r}")
        if isinstance(item, (list, tuple, dict)) and len(item) > MAX_ITEMS:
            raise TokenizerError(f"MidiTok {place} has {len(item):,} entries, at most {MAX_ITEMS}")
        if isinstance(item, dict):
            stack.extend((v, f"{place}.{k}") for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, place) for v in item)


def _beat_ranges(config: dict[str, Any], key: str) -> dict[tuple[int, int], int]:
    """`beat_res`-like {"start_end": steps per beat}, each range within MAX_BEATS beats."""
    value = config.get(key, {})
    if not isinstance(value, dict) or len(value) > MAX_RANGES:
        raise TokenizerError(f"MidiTok {key} must map at most {MAX_RANGES} beat ranges")
    ranges = {}
    for name, steps in value.items():
        start, _, end = str(name).partition("_")
        if not (start.isdigit() and end.isdigit() and int(start) < int(end) <= MAX_BEATS
                and _whole(steps, 1, MAX_RESOLUTION)):  # fmt: skip
            raise TokenizerError(
                f"MidiTok {key} {name!r}: {steps!r} must be beats start_end up to {MAX_BEATS} "
                f"with 1 to {MAX_RESOLUTION} steps per beat"
            )
        ranges[int(start), int(end)] = steps
    return ranges


def _pitch_range(config: dict[str, Any], key: str) -> int:
    value = config.get(key, [0, 127])
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and _whole(value[0], 0, 127)
            and _whole(value[1], value[0] + 1, 127)):  # fmt: skip
        raise TokenizerError(f"MidiTok {key} must be [low, high] within 0-127, not {value!r}")
    return value[1] - value[0]


def _time_signatures(config: dict[str, Any]) -> tuple[int, int]:
    """(how many time signatures, the most beats of a bar in positions' units of one beat)."""
    value = config.get("time_signature_range", {"4": [4]})
    if not isinstance(value, dict) or not value:
        raise TokenizerError("MidiTok time_signature_range must map denominators to numerators")
    count, longest, denominators = 0, 1, []
    for denominator, numerators in value.items():
        if not (str(denominator).isdigit() and int(denominator) in _DENOMINATORS
                and isinstance(numerators, (list, tuple)) and numerators
                and all(_whole(n, 1, MAX_BEATS) for n in numerators)):  # fmt: skip
            raise TokenizerError(
                f"MidiTok time_signature_range {denominator!r}: {numerators!r} needs a "
                f"denominator in {_DENOMINATORS} and numerators 1 to {MAX_BEATS}"
            )
        count, longest = count + len(numerators), max(longest, *numerators)
        denominators.append(int(denominator))
    return count, longest * max(denominators) // min(denominators)


def check_config(config: Any) -> None:
    """A `TokenizerError` for a MidiTok config (JSON, as stored) whose parameters are out of
    range or would make a vocabulary over MAX_VOCABULARY: checked before MidiTok builds it."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise TokenizerError(f"a MidiTok config must be a JSON object, not {type(config).__name__}")
    _check_numbers(config)
    for key, (low, high) in _SMALL.items():
        if key in config and not _whole(config[key], low, high):
            raise TokenizerError(f"MidiTok {key} must be {low} to {high}, not {config[key]!r}")
    beats = _beat_ranges(config, "beat_res")
    rests = _beat_ranges(config, "beat_res_rest")
    steps = sum((end - start) * res for (start, end), res in beats.items())
    signatures, bar_beats = _time_signatures(config)
    _check_programs(config)
    controls, bends = config.get("control_change_numbers", []), config.get("pitch_bend_range")
    if not isinstance(controls, (list, tuple)):
        raise TokenizerError("MidiTok control_change_numbers must be a list of numbers")
    if bends is not None and not (isinstance(bends, (list, tuple)) and len(bends) == 3
                                  and _whole(bends[2], 1, 1024)):  # fmt: skip
        raise TokenizerError(f"MidiTok pitch_bend_range must be [low, high, 1-1024 bins], "
                             f"not {bends!r}")  # fmt: skip
    params = config.get("additional_params", {})
    bars = params.get("max_bar_embedding") if isinstance(params, dict) else None
    if bars is not None and not _whole(bars, 1, 1024):
        raise TokenizerError(f"MidiTok max_bar_embedding must be 1 to 1024, not {bars!r}")
    estimate = (
        2 * _pitch_range(config, "pitch_range") + _pitch_range(config, "drums_pitch_range")
        + config.get("num_velocities", 32) + 2 * steps  # durations and time shifts
        + sum((end - start) * res for (start, end), res in rests.items())
        + max(beats.values(), default=8) * bar_beats  # positions in the longest bar
        + config.get("num_tempos", 32) + signatures + (bars or 0) + MAX_ITEMS  # programs, chords
        + len(controls) * config.get("control_change_n_bins", 32) + (bends or [0, 0, 0])[2]
        + 4 * config.get("max_pitch_interval", 16)
        + config.get("ac_note_density_bar_max", 18) + 2 * config.get("ac_polyphony_max", 6)
        + 2 * config.get("ac_note_density_track_max", 18) + 12  # attribute controls
        + config.get("ac_repetition_track_num_bins", 10)
    )  # fmt: skip
    if estimate > MAX_VOCABULARY:
        raise TokenizerError(
            f"this MidiTok config would make about {estimate:,} tokens, more than "
            f"{MAX_VOCABULARY:,}: refused"
        )


def _check_programs(config: dict[str, Any]) -> None:
    """Programs are General MIDI's 0-127 and the drums' -1 (a decoded track gets the number)."""
    for key in ("programs", "use_note_duration_programs"):
        value = config.get(key, [])
        if not (isinstance(value, (list, tuple))
                and all(_whole(p, DRUM_PROGRAM, 127) for p in value)):  # fmt: skip
            raise TokenizerError(f"MidiTok {key} must be a list of programs -1 to 127")


def instruments_config() -> dict[str, Any]:
    """The MidiTok config (JSON, as stored) of the `instruments` track mode: MidiTok's defaults,
    which the other modes use, with `PROGRAM_SETTINGS` (Program tokens in one stream)."""
    config = import_miditok().TokenizerConfig(**PROGRAM_SETTINGS)
    return config.to_dict(serialize=True)


def _config_from_json(config: dict[str, Any]) -> Any:
    """MidiTok's `TokenizerConfig.load_from_json`, from a dict instead of a file."""
    TokenizerConfig = import_miditok().TokenizerConfig  # noqa: N806

    config = dict(config)
    for key in ("beat_res", "beat_res_rest"):
        if key in config:
            config[key] = {tuple(map(int, k.split("_"))): v for k, v in config[key].items()}
    if "time_signature_range" in config:
        config["time_signature_range"] = {
            int(k): v for k, v in config["time_signature_range"].items()
        }
    config.setdefault("additional_params", {})
    return TokenizerConfig.from_dict(config)


def check_controls_kind(kind: str) -> None:
    """A setting error unless MidiTok tokenizer `kind` has Bar tokens to put controls after."""
    if kind not in ac.CONTROLS_TOKENIZERS:
        raise TokenizerSettingError(
            f"controls need a tokenizer with bar tokens ({', '.join(ac.CONTROLS_TOKENIZERS)}), "
            f"not {kind!r}",
            "controls",
        )


def controls_config(config: dict[str, Any] | None, names: list[str]) -> dict[str, Any]:
    """The MidiTok config (JSON) of a tokenizer with the controls `names` (tokens.controls)."""
    base = config or import_miditok().TokenizerConfig().to_dict(serialize=True)
    one_stream = bool(base.get("use_programs") and base.get("one_token_stream_for_programs"))
    return ac.config_with_controls(base, names, one_stream)


class MidiTokTokenizer(Tokenizer):
    """A MidiTok tokenizer for one-track pieces (we merge or split tracks before it), or with
    Program tokens in one stream for pieces of several instruments (`keeps_instruments`).

    With `controls` (tokens.controls), each bar's attribute control tokens follow its header,
    dropped at random: the tokens a model trained with controls learns from."""

    name = "miditok"  # replaced per instance by the MidiTok kind, e.g. "remi"
    timed = True

    def __init__(
        self,
        kind: str = "remi",
        config: dict[str, Any] | None = None,
        controls: dict[str, Any] | None = None,
    ) -> None:
        miditok = import_miditok()

        if kind not in _CLASSES:
            raise TokenizerError(f"unknown MidiTok tokenizer {kind!r}")
        self.kind = kind
        self.name = kind  # type: ignore[misc]  # the user-facing name, e.g. "remi"
        check_config(config)
        if controls is not None:
            ac.check_controls(controls)
            check_controls_kind(kind)
        try:
            tok_config = _config_from_json(config) if config else miditok.TokenizerConfig()
            self._tokenizer = getattr(miditok, _CLASSES[kind])(tok_config)
        except (TypeError, ValueError, KeyError) as error:
            raise TokenizerError(f"bad MidiTok config for {kind}: {error}") from error
        self._special = set(self._tokenizer.special_tokens)
        self.controls = controls
        names = controls["names"] if controls else []
        self._controls = ac.attribute_controls(names, self._tokenizer.config)
        self._instruments = ac.INSTRUMENTS in names  # the piece's programs first
        if self._instruments and not self.keeps_instruments:
            raise TokenizerError("the instruments control needs Program tokens in one stream")

    @property
    def keeps_instruments(self) -> bool:
        """Whether tracks keep their instruments: Program tokens, all tracks in one stream."""
        config = self._tokenizer.config
        return bool(config.use_programs and config.one_token_stream_for_programs)

    def encode(self, score: symusic.Score) -> list[str]:
        if len(score.tracks) > 1 and not self.keeps_instruments:
            # one stream: without programs MidiTok would make one sequence per track
            from lstm_music.tokens.midi import merge_tracks

            score = merge_tracks(score, list(score.tracks))
        controlled = bool(self._controls) or self._instruments
        if controlled:  # the controls are read off the score MidiTok tokenizes
            score = self._tokenizer.preprocess_score(score.copy())
        sequences = self._tokenizer.encode(score, no_preprocess_score=controlled)
        if isinstance(sequences, list):  # one sequence per track
            tokens = [token for seq in sequences for token in seq.tokens]
        else:
            tokens = list(sequences.tokens)
        if not controlled:
            return tokens
        groups = ac.bar_controls(score, self._controls) if self._controls else {}
        programs = ac.piece_programs(score) if self._instruments else []
        keep = self.controls or {}
        return ac.insert_controls(tokens, groups, keep["keep_bar"], keep["keep_piece"], programs)

    def decode(self, tokens: list[str]) -> symusic.Score:
        TokSequence = import_miditok().TokSequence  # noqa: N806

        vocab = self._tokenizer.vocab
        known = TokSequence(tokens=[t for t in tokens if t in vocab and t not in self._special
                                    and not ac.is_control(t)])  # fmt: skip
        try:  # one stream of programs is one sequence, else a list of one track's sequence
            return self._tokenizer.decode(known if self.keeps_instruments else [known])
        except Exception as error:  # MidiTok has no error type of its own
            raise TokenizerError(f"{self.kind} could not decode these tokens: {error}") from error

    def transpose_token(self, token: str, semitones: int) -> str | None:
        if ac.is_control(token):
            return ac.transpose_control(token, semitones)
        kind, _, value = token.partition("_")
        if kind not in PITCH_KINDS or not value.isdigit():
            return token
        low, high = self._tokenizer.config.pitch_range
        pitch = int(value) + semitones
        return f"{kind}_{pitch}" if low <= pitch < high else None

    def base_vocabulary(self) -> list[str]:
        """MidiTok's fixed vocabulary in its id order, without its special tokens."""
        vocab = self._tokenizer.vocab
        base = [t for t in sorted(vocab, key=vocab.get) if t not in self._special]
        known = set(base)  # with one stream of programs MidiTok has no control tokens of its own
        controls = ac.control_tokens(self._controls, self._instruments)
        return base + [t for t in controls if t not in known]

    def params(self) -> dict[str, Any]:
        params = {"kind": self.kind, "config": self._tokenizer.config.to_dict(serialize=True)}
        if self.controls is not None:  # absent otherwise: configs without controls as before
            params["controls"] = self.controls
        return params
