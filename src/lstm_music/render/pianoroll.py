"""The piano-roll picture of a score: a bar per note, time across, pitch up, darker = louder.

A score of several instruments gets a hue per instrument, named in a legend (tracks of one
program share it); one of a single instrument, a hue per track.

Drawn with matplotlib's object API (no pyplot: no global figure, the backend untouched), in the
shared style of `render.plots`; the file is written whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import symusic

from lstm_music.errors import SettingError
from lstm_music.render.synth import replacing
from lstm_music.tokens.instruments import instrument_name, instrument_of
from lstm_music.tokens.midi import duration_seconds, note_count
from lstm_music.tokens.timing import tempo_map, tick_seconds

TIME_UNITS = ("bars", "seconds")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def render_png(
    score: symusic.Score, path: str | Path, title: str = "", time_unit: str = "bars"
) -> Path:
    """A piano roll: a bar per note, time across (bars or seconds), pitch up, darker = louder.

    Instruments get different hues when there are several, else tracks do. A score without
    notes gives an empty, labelled picture ("no notes") rather than an error, so a pipeline
    always has its image.
    """
    if time_unit not in TIME_UNITS:
        choices = ", ".join(TIME_UNITS)
        raise SettingError(f"time unit must be one of {choices}, not {time_unit!r}", "time_unit")
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from lstm_music.render.plots import STYLE, WIDE_FIGSIZE

    path = Path(path)
    to_x, bar_lines, xlabel = _time_axis(score, time_unit)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=WIDE_FIGSIZE)  # no pyplot: no global figure, backend untouched
        axes = figure.subplots()
        pitches = _draw_notes(axes, score, to_x)
        _pitch_axis(axes, pitches)
        end = float(to_x(np.array([max(score.end(), 1)]))[0])
        axes.set_xlim(float(to_x(np.array([0]))[0]), end)
        if len(bar_lines) <= 300:
            axes.set_xticks(bar_lines, minor=True)
            axes.grid(which="minor", axis="x", alpha=0.12)
        if time_unit == "bars":
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(xlabel)
        axes.set_ylabel("pitch")
        minutes, seconds = divmod(round(duration_seconds(score)), 60)
        notes = note_count(score)
        axes.set_title(f"{title or path.stem}  ({minutes}:{seconds:02d}, {notes:,} notes)")
        if not notes:
            axes.text(0.5, 0.5, "no notes", transform=axes.transAxes, ha="center", color="0.5")
        figure.text(0.99, 0.01, "darker = louder", ha="right", va="bottom", color="0.5", size=8)
        figure.tight_layout()
        with replacing(path) as temporary:
            figure.savefig(temporary, format="png")
    return path


def _draw_notes(axes, score: symusic.Score, to_x: Callable) -> np.ndarray:
    """One rectangle per note, shaded by velocity, a hue per instrument (or track); the pitches
    drawn."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    groups = _colour_groups(score)
    hues = _hues(len(groups))
    handles, pitches = [], [np.zeros(0, dtype=int)]
    for (label, tracks), hue in zip(groups, hues):
        notes = {key: np.concatenate([t.notes.numpy()[key] for t in tracks]) for key in
                 ("time", "duration", "pitch", "velocity")}  # fmt: skip
        start = to_x(notes["time"].astype(np.float64))
        stop = to_x((notes["time"] + notes["duration"]).astype(np.float64))
        stop = np.maximum(stop, start + (stop.max() - start.min() + 1) * 1e-3)  # never invisible
        low, high = notes["pitch"] - 0.4, notes["pitch"] + 0.4
        corners = [(start, low), (start, high), (stop, high), (stop, low)]
        boxes = np.stack([np.stack(corner, axis=-1) for corner in corners], axis=1)
        rgb = np.array(to_rgb(hue))
        shade = 0.3 + 0.7 * np.clip(notes["velocity"], 0, 127)[:, None] / 127.0
        colours = 1.0 - shade * (1.0 - rgb)  # soft notes fade towards white
        axes.add_collection(PolyCollection(boxes, facecolors=colours, edgecolors="none"))
        handles.append(Patch(color=rgb, label=label))
        pitches.append(notes["pitch"].astype(int))
    if len(groups) > 1:
        shown = handles[:16]  # a file of 40 tracks would bury the picture
        axes.legend(handles=shown, loc="upper right", fontsize=7, ncols=min(4, len(shown)))
    return np.concatenate(pitches)


def _colour_groups(score: symusic.Score) -> list[tuple[str, list[symusic.Track]]]:
    """(legend label, tracks) per hue: per instrument when the tracks have several, else per
    track (a four-part chorale on one program keeps four hues)."""
    tracks = [track for track in score.tracks if len(track.notes)]
    instruments: dict[int, list[symusic.Track]] = {}
    for track in tracks:
        instruments.setdefault(instrument_of(track), []).append(track)
    if len(instruments) > 1:
        return [(instrument_name(program), group) for program, group in instruments.items()]
    return [(track.name or f"track {i + 1}", [track]) for i, track in enumerate(tracks)]


def _hues(count: int) -> list:
    """The shared palette's hues, or for more groups than it has, matplotlib's tab20."""
    from matplotlib import colormaps

    from lstm_music.render.plots import PALETTE

    if count <= len(PALETTE):
        return list(PALETTE[:count])
    table = colormaps["tab20"]
    return [table(i % 20) for i in range(count)]


def _pitch_axis(axes, pitches: np.ndarray) -> None:
    """Trim to the pitches used (plus a margin); name every C, or C/E/G in a narrow range."""
    low, high = (int(pitches.min()) - 2, int(pitches.max()) + 2) if len(pitches) else (55, 79)
    if high - low < 12:
        low, high = low - (12 - (high - low)) // 2, low + 12
    axes.set_ylim(low - 0.5, high + 0.5)
    named = [p for p in range(low, high + 1) if p % 12 == 0]
    if len(named) < 2:
        named = [p for p in range(low, high + 1) if p % 12 in (0, 4, 7)]
    axes.set_yticks(named, [f"{NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in named])


def _time_axis(score: symusic.Score, unit: str) -> tuple[Callable, np.ndarray, str]:
    """Ticks -> x (bar number from 1, or seconds), the bar lines in x, and the axis label."""
    bars = _bar_starts(score)
    if unit == "seconds":
        to_x = partial(tick_seconds, tempo_map(score))
        return to_x, to_x(bars), "time (seconds)"
    to_x = partial(_bar_number, bars)
    return to_x, np.arange(1, len(bars) + 1, dtype=np.float64), "bar"


def _bar_number(bars: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    return np.interp(ticks, bars, np.arange(len(bars))) + 1


def _bar_starts(score: symusic.Score) -> np.ndarray:
    """Tick of every bar line up to (and past) the score's end; 4/4 until a time signature."""
    signatures = sorted(
        (int(s.time), s.numerator, s.denominator)
        for s in score.time_signatures
        if s.numerator > 0 and s.denominator > 0 and s.time >= 0
    )
    if not signatures or signatures[0][0] > 0:
        signatures.insert(0, (0, 4, 4))
    end, starts = max(score.end(), 1), []
    for k, (time, numerator, denominator) in enumerate(signatures):
        length = max(1e-9, score.ticks_per_quarter * 4 * numerator / denominator)
        last = k == len(signatures) - 1
        stop = end + length if last else signatures[k + 1][0]
        count = int(np.ceil((stop - time) / length))
        starts.append(time + length * np.arange(max(count, 2) if last else count))
    return np.concatenate(starts)
