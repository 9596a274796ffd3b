"""Reading MIDI files into clean pieces: symusic parsing, sanity checks, track choice.

Everything here runs inside a `prepare` worker process, so a file that crashes the C++ parser
takes down only its worker. Each problem raises `MidiError` with a one-line reason that ends up
in the corpus manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.fsutil import not_regular
from lstm_music.tokens.instruments import (
    DEFAULT_MAX_INSTRUMENTS,
    INSTRUMENTS_MODE,
    MAX_INSTRUMENTS,
    instrument_tracks,
    shared_instruments,
)
from lstm_music.tokens.seed.silences import cap_silences_in_bars
from lstm_music.tokens.silences import cap_silences
from lstm_music.tokens.ticks import MAX_TICK, event_time_span
from lstm_music.tokens.timing import (
    clamp_tempos,
    end_seconds,
    seconds_at,
    seconds_between,
    ticks_at,
)

TRACK_MODES = ("merge", "separate", "seed", "programs", INSTRUMENTS_MODE)
MIN_TPQ = 24  # ticks per quarter note; see `_division`
MAX_NOTE_QUARTERS = 64.0  # 16 bars of 4/4: longer notes are shortened (see cap_note_lengths)
SMPTE_FPS = (24, 25, 29, 30)  # 29 = 29.97 drop-frame


class MidiError(LstmMusicError, ValueError):
    """A file that cannot become a piece; the message says why, in one line."""


class SkipFile(MidiError):
    """A valid file with nothing we can use (no notes, drums only, too big): skipped, not failed."""


@dataclass(frozen=True)
class TrackOptions:
    """How a file becomes pieces (track mode, programs, drums, caps)."""

    mode: str = "merge"  # merge | separate | seed | programs | instruments
    # General MIDI programs (0-127) kept by mode "programs", and by "instruments" when given
    programs: tuple[int, ...] = ()
    drums: bool = False  # keep drum tracks (channel 10); mode "instruments" always keeps them
    max_notes: int = 200_000  # reject files with more notes than this
    # quarter notes: leading silence is cut and gaps between notes longer than this shortened to
    # it (0 = off: both kept, as the frame-level polyphonic benchmark needs)
    max_silence: float = 8.0
    # cut what follows the last note and shorten notes held over MAX_NOTE_QUARTERS, whatever
    # max_silence says; off for untimed tokenizers (seed), whose tokens do not grow with silence
    # and which copy music21's reading, where a key signature on the final bar line still
    # changes the tokens
    trim_after_music: bool = True
    # mode "instruments": at most this many instruments (drums count as one) per piece
    max_instruments: int = DEFAULT_MAX_INSTRUMENTS

    def __post_init__(self) -> None:
        if self.mode not in TRACK_MODES:
            choices = ", ".join(TRACK_MODES)
            raise SettingError(f"tracks must be one of {choices}, not {self.mode!r}", "tracks")
        if self.mode == "programs" and not self.programs:
            raise SettingError("tracks programs needs the programs to keep, e.g. 0,1,2", "programs")
        if any(not 0 <= p <= 127 for p in self.programs):
            raise SettingError("programs are General MIDI program numbers 0-127", "programs")
        if self.max_notes < 1:
            raise SettingError("max_notes must be at least 1", "max_notes")
        if self.max_silence < 0:
            raise SettingError("max_silence must not be negative", "max_silence")
        if not 1 <= self.max_instruments <= MAX_INSTRUMENTS:
            raise SettingError(
                f"max_instruments must be 1 to {MAX_INSTRUMENTS} (the channels of a MIDI file)",
                "max_instruments",
            )


def options_like(corpus_config: dict, timed: bool) -> TrackOptions:
    """Options reading one more file (a primer, a generated piece) into one piece the way a
    corpus made with `corpus_config` (its saved prepare settings) read its files: merged, or
    its instruments kept for a corpus of mode "instruments"; `timed` is the corpus
    tokenizer's `timed` (see `TrackOptions.trim_after_music`)."""
    instruments = corpus_config.get("tracks") == INSTRUMENTS_MODE
    cap = corpus_config.get("max_instruments")  # a corpus or checkpoint from before it existed
    usable = isinstance(cap, int) and 1 <= cap <= MAX_INSTRUMENTS
    return TrackOptions(
        mode=INSTRUMENTS_MODE if instruments else "merge",
        programs=tuple(corpus_config.get("programs", ())) if instruments else (),
        drums=bool(corpus_config.get("drums", False)),
        max_silence=float(corpus_config.get("max_silence", 8.0)),
        trim_after_music=timed,
        max_instruments=cap if usable else DEFAULT_MAX_INSTRUMENTS,
    )


def read_score(data: bytes) -> symusic.Score:
    """Parse MIDI bytes into a score with a sane time base, or raise `MidiError` saying why.

    The division (header bytes 12-13) is checked before parsing: see `_division`; event times
    after it (see `tokens.ticks`). Tempos are clamped here, so every path that reads MIDI
    (prepare, primers, render, upload) gets them.
    """
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    if b"MTrk" not in data[14:]:
        raise MidiError("corrupt MIDI: no track chunk (truncated file?)")
    tpq, smpte_qpm = _division(data[12:14])
    if smpte_qpm:  # symusic reads only ticks per quarter: give it the ticks per second
        data = data[:12] + tpq.to_bytes(2, "big") + data[14:]
    try:
        score = symusic.Score.from_midi(data)
    except Exception as error:  # symusic raises RuntimeError with its own wording
        reason = str(error).split(":")[1].strip() if ":" in str(error) else str(error)
        raise MidiError(f"corrupt MIDI: {reason or 'parser error'}") from error
    first, last = event_time_span(score)
    if first < 0 or last > MAX_TICK:  # symusic's int32 ticks overflowed, or nearly: see ticks.py
        raise MidiError(f"corrupt MIDI: times past {MAX_TICK:,} ticks")
    if smpte_qpm:  # SMPTE time ignores tempo events: one fixed tempo gives the real timing
        score.tempos.clear()
        score.tempos.append(symusic.Tempo(0, smpte_qpm))
    clamp_tempos(score)
    return score


def _division(header: bytes) -> tuple[int, float]:
    """(ticks per quarter, 0.0) from the header's division, or for SMPTE time (ticks, tempo).

    Ticks per quarter below `MIN_TPQ` are refused rather than rescaled: the true division of a
    damaged header cannot be guessed, and read as written a division of 1 makes every
    480-tick note 480 quarters long (a 23-note primer became a 20-minute piece). 24, the MIDI
    clock's resolution, is the coarsest that sequencers write. An SMPTE division (top bit set:
    -frames per second, ticks per frame) is real time, so it becomes ticks per second at a
    tempo of 60 quarters a minute (59.94 for 29.97 drop-frame): one quarter lasts one second.
    """
    if header[0] & 0x80:
        fps, per_frame = 256 - header[0], header[1]
        if fps not in SMPTE_FPS or per_frame == 0:
            raise MidiError(f"corrupt MIDI: SMPTE division {fps} fps x {per_frame} ticks")
        ticks = (30 if fps == 29 else fps) * per_frame  # at most 30 * 255, fits in 15 bits
        return ticks, (59.94 if fps == 29 else 60.0)
    tpq = int.from_bytes(header, "big")
    if tpq < MIN_TPQ:
        raise MidiError(
            f"corrupt MIDI: {tpq} ticks per quarter note (under {MIN_TPQ}: damaged header?)"
        )
    return tpq, 0.0


def note_count(score: symusic.Score) -> int:
    return sum(len(track.notes) for track in score.tracks)


def clean_track_notes(track: symusic.Track) -> None:
    """Drop notes that no tokenizer can use: zero or negative length, negative time."""
    notes = track.notes.numpy()
    keep = (notes["duration"] > 0) & (notes["time"] >= 0) & (notes["velocity"] > 0)
    if not keep.all():
        track.notes = symusic.Note.from_numpy(
            **{key: values[keep] for key, values in notes.items()}, ttype="tick"
        )


def cap_note_lengths(score: symusic.Score, max_quarters: float) -> int:
    """Shorten notes held longer than `max_quarters`; how many were shortened.

    One note held for hours (a crafted file) would shelter any silence, and any events after
    the music, from `cap_silences` and `trim_after_last_note`.
    """
    cap, shortened = int(round(max_quarters * score.tpq)), 0
    for track in score.tracks:
        notes = track.notes.numpy()
        long = notes["duration"] > cap
        if long.any():
            notes["duration"] = np.minimum(notes["duration"], cap)
            track.notes = symusic.Note.from_numpy(**notes, ttype="tick")
            shortened += int(long.sum())
    return shortened


def trim_after_last_note(score: symusic.Score) -> tuple[symusic.Score, int]:
    """Drop every event after the last note's end; the score and the ticks trimmed.

    Tempo, time-signature or control events far after the music (a crafted file had them at
    tick 268 million) would otherwise become hundreds of thousands of empty-bar tokens, or
    hours of silent audio. Pedals still down at the end are released there; a score without
    notes keeps nothing after tick 0.
    """
    notes = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    ends = [(n["time"].astype(np.int64) + n["duration"]).max() for n in notes]
    last = int(max(ends, default=0))
    extra = int(score.end()) - last
    if extra <= 0:
        return score, 0
    return cut_score(score, last), extra


def cut_score(score: symusic.Score, stop: int, mark_end: bool = False) -> symusic.Score:
    """The score before tick `stop`: later events dropped, notes and pedals sounding on shortened.

    Not symusic's `clip(..., clip_end=True)`, which drops the notes that cross the end (a piece
    cut at 30 s lost its last chord and came out at 28). `mark_end` puts an "end" marker at
    `stop`, so that the file lasts exactly that long even when it ends in a rest.
    """
    cut = score.clip(0, stop, clip_end=False)
    for track in cut.tracks:
        track.notes = _shortened(symusic.Note, track.notes, stop)
        track.pedals = _shortened(symusic.Pedal, track.pedals, stop)
    if mark_end:
        cut.markers.append(symusic.TextMeta(stop, "end"))
    return cut


def _shortened(kind, events, stop: int):
    """Notes or pedals (time, duration, ...) ending at `stop` at the latest."""
    if not len(events):
        return events
    arrays = events.numpy()
    arrays["duration"] = np.minimum(arrays["duration"], stop - arrays["time"])
    return kind.from_numpy(**arrays, ttype="tick")


def _keep(track: symusic.Track, options: TrackOptions) -> bool:
    if len(track.notes) == 0:
        return False
    if track.is_drum:
        return options.drums or options.mode == INSTRUMENTS_MODE
    chosen = options.mode == "programs" or (options.mode == INSTRUMENTS_MODE and options.programs)
    return not chosen or track.program in options.programs


def _with_tracks(score: symusic.Score, tracks: Sequence[symusic.Track]) -> symusic.Score:
    piece = symusic.Score(score.tpq)
    piece.tempos = score.tempos.copy()
    piece.time_signatures = score.time_signatures.copy()
    piece.key_signatures = score.key_signatures.copy()
    for track in tracks:
        piece.tracks.append(track.copy())
    return piece


def merge_tracks(score: symusic.Score, tracks: Sequence[symusic.Track]) -> symusic.Score:
    """One piano stream holding the notes of all `tracks` (the default track mode, merge)."""
    merged = symusic.Track("piano", 0, False)
    for track in tracks:
        merged.notes.extend(track.notes)
        merged.pedals.extend(track.pedals)
    merged.notes.sort()
    merged.pedals.sort()
    return _with_tracks(score, [merged])


def choose_tracks(
    score: symusic.Score, options: TrackOptions, report: Trimmed | None = None
) -> list[tuple[str, symusic.Score]]:
    """The pieces of one file as (label, score) pairs; label is "" or "track N: name".

    Instruments over the cap of mode "instruments" are said in `report`, when given."""
    usable = [t for t in score.tracks if _keep(t, options)]
    if not usable:
        drums_only = any(t.is_drum and len(t.notes) for t in score.tracks)
        if drums_only and not options.drums:
            raise SkipFile("only drum tracks (drums are not kept)")
        if note_count(score) == 0:
            raise SkipFile("no notes")
        raise SkipFile(f"no track matches the track mode {options.mode}")
    if options.mode == "separate":
        return [
            (f"track {i}: {t.name}".rstrip(": "), _with_tracks(score, [t]))
            for i, t in enumerate(score.tracks)
            if _keep(t, options)
        ]
    if options.mode == "seed":
        # music21's partitionByInstrument groups tracks by instrument and the seed keeps the
        # first group. Unlike music21 we skip tracks without notes, so no file comes out empty.
        # The tracks stay apart: music21 forms chords within each track, never across them.
        first = usable[0]
        same = [t for t in usable if (t.program, t.is_drum) == (first.program, first.is_drum)]
        return [("", _with_tracks(score, same))]
    if options.mode == INSTRUMENTS_MODE:
        kept, dropped = instrument_tracks(usable, options.max_instruments)
        if report is not None:
            report.dropped_instruments = dropped
            report.merged_tracks = shared_instruments(usable)
        return [("", _with_tracks(score, kept))]
    return [("", merge_tracks(score, usable))]


@dataclass
class Trimmed:
    """Silence `read_pieces` removed from one file, for the corpus manifest."""

    trailing_quarters: float = 0.0  # after the file's last note (meta events, controls...)
    trailing_seconds: float = 0.0
    capped_quarters: float = 0.0  # leading silence and gaps over max_silence, all pieces
    long_notes: int = 0  # notes held over MAX_NOTE_QUARTERS, shortened to it
    dropped_instruments: str = ""  # mode "instruments": what went over the cap, in one line
    # mode "instruments": instruments played by several tracks, merged into one stream each:
    # [{"program": 0, "name": "Acoustic Grand Piano", "tracks": 2}] (instruments.shared_instruments)
    merged_tracks: list[dict] = field(default_factory=list)


def load_pieces(data: bytes, options: TrackOptions) -> list[tuple[str, symusic.Score]]:
    """Parse, check and clean one file's bytes; its pieces, each trimmed and silence-capped."""
    return read_pieces(data, options)[0]


def read_pieces(
    data: bytes, options: TrackOptions
) -> tuple[list[tuple[str, symusic.Score]], Trimmed]:
    """`load_pieces`, and how much silence was removed.

    `max_silence` 0 keeps leading silence and long gaps; what follows the last note, and notes
    held over `MAX_NOTE_QUARTERS`, are cut whenever `trim_after_music` is on (else a file with
    a tempo event hours after its music becomes 700,000 tokens).
    """
    return score_pieces(read_score(data), options)


def score_pieces(
    score: symusic.Score, options: TrackOptions
) -> tuple[list[tuple[str, symusic.Score]], Trimmed]:
    """`read_pieces` for a score already read (by `read_score`); changes `score` in place."""
    total = note_count(score)
    if total > options.max_notes:
        raise SkipFile(f"{total} notes, over --max-notes {options.max_notes}")
    for track in score.tracks:
        clean_track_notes(track)
    if note_count(score) == 0:
        raise SkipFile("no notes" if total == 0 else "only zero-length notes")
    report = Trimmed()
    if options.trim_after_music:
        report.long_notes = cap_note_lengths(score, max(MAX_NOTE_QUARTERS, options.max_silence))
        untrimmed, end = score, int(score.end())
        score, extra = trim_after_last_note(score)
        report.trailing_quarters = extra / score.tpq
        report.trailing_seconds = seconds_between(untrimmed, end - extra, end) if extra else 0.0
    pieces = []
    for label, piece in choose_tracks(score, options, report):
        if options.trim_after_music:
            piece = trim_after_last_note(piece)[0]  # a track may end before the others
            piece, removed = cap_silences(piece, options.max_silence)
        else:  # untimed (seed): cut in whole bars, music21's reading counts from the bar lines
            piece, removed = cap_silences_in_bars(piece, options.max_silence)
        report.capped_quarters += removed / piece.tpq
        pieces.append((label, piece))
    return pieces, report


def duration_seconds(score: symusic.Score) -> float:
    """Length of a piece in seconds, following its tempo map; 0 without notes.

    Events after the last note count (see `end_seconds`): call `trim_after_last_note` first for
    the music's own length.
    """
    return end_seconds(score) if note_count(score) else 0.0


def read_file(path: Path) -> bytes:
    """The file's bytes; `MidiError` for a file that cannot be read, or that is not a regular
    file (a named pipe would block the read forever)."""
    try:
        problem = not_regular(path)
        if problem:
            raise MidiError(problem)
        return path.read_bytes()
    except OSError as error:
        raise MidiError(f"unreadable: {error.strerror or error}") from error


# the tempo-map helpers live in tokens/timing.py; generation/generate.py still imports these two
# from here
__all__ = ["seconds_at", "ticks_at"]
