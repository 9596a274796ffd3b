"""music21's parts, emulated on symusic: one MIDI track read alone, or several merged into one.

music21 reads a MIDI file track by track, each into a part of its own (`music21_rules`). The seed
then calls `instrument.partitionByInstrument`, which flattens each part (measures and voices are
gone, tied notes stay split) and inserts the elements of all parts that share an instrument into
one part, track after track. Reading that part with `recurse()` sorts it by offset, grace notes
first, then by insertion: so notes that sound together are read track by track, and within a
track in the order `recurse()` reads the track's own part. Chords never span tracks.

The offsets are those of the flattened parts, where music21's makeRests has laid each part's bars
end to end, each as long as its highestTime. That is the bar's length, except where music21's
cached end of the bar, or of one of its voices, is stale (see `span`): then all later bars of
that track move, and with them the order in which its notes meet the other tracks' notes.
"""

from __future__ import annotations

import symusic

from lstm_music.tokens.seed.music21_rules import (
    _DRUM,
    _bar_lengths,
    _best_match,
    _group_chords,
    _make_measures,
    _make_ties,
    _make_voices,
    _Measure,
    _music21_ends,
    _quantize,
)

__all__ = ["part_tokens", "partitioned_tokens", "read_part", "read_tokens", "span"]


def read_tokens(score: symusic.Score) -> list[str]:
    """Tokens in the order music21 reads the score.

    One track (with notes) is read as music21 reads its part: bar by bar, voice by voice.
    Several tracks are read as the part that music21's `partitionByInstrument` merges them into
    (the seed's own reading, `--tracks seed`): each track on its own, then all by offset.
    """
    if score.ttype != symusic.TimeUnit.tick:
        score = score.to(symusic.TimeUnit.tick)
    tracks = [track for track in score.tracks if len(track.notes)]
    if len(tracks) > 1:
        return partitioned_tokens(score, [[track] for track in tracks])
    return part_tokens(score, tracks)


def part_tokens(score: symusic.Score, tracks: list[symusic.Track]) -> list[str]:
    """The tokens of `tracks` read as one music21 part, as music21 reads one MIDI track (whose
    channels symusic may have split into several tracks): chords may span them. In ticks."""
    return [
        element[4]
        for measure in read_part(score, tracks)
        for element in measure.elements()
        if element[4] is not None
    ]


def partitioned_tokens(score: symusic.Score, parts: list[list[symusic.Track]]) -> list[str]:
    """The tokens of music21's merged part of `parts` (each the tracks of one MIDI track, read as
    one part), in order. A single part comes out flattened. In ticks."""
    keyed: list[tuple[int, int, int, int, str]] = []
    for index, tracks in enumerate(parts):
        start = 0  # makeRests lays the bars end to end, each as long as its span
        for measure in read_part(score, tracks):
            for offset, not_grace, _, _, token in measure.elements():
                if token is not None:
                    keyed.append((start + offset, not_grace, index, len(keyed), token))
            start += span(measure)
    keyed.sort()
    return [key[4] for key in keyed]


def span(measure: _Measure) -> int:
    """The bar's highestTime when music21's makeRests lays the bars end to end.

    It is at least the bar's length, more where an element overhangs the bar (a tie remainder
    placed beside voices is not split again) or where a cached end is stale. music21 caches a
    voice's end when makeVoices looks at it for room, and every bar's end when a tempo, key or
    time signature sits on a bar line at or after the part's last note (makeMeasures stores it
    at the end). Splitting a chord at the bar line leaves that cache as it was (a chord does not
    tell its streams that its duration changed; a note does), and so does makeRests unless it
    has a gap to fill: the bar then keeps the chord's unsplit end, and all later bars move.
    """
    if measure.stale is not None and _filled(measure.flat, measure.stale, measure.length):
        return max(measure.stale, measure.length)
    ends = [measure.length, *(element[0] + element[3] for element in measure.flat)]
    for voice, cached in zip(measure.voices or [], measure.cached):
        reach = max(element[0] + element[3] for element in voice)
        stale = cached is not None and _filled(voice, cached, measure.length)
        ends.append(max(cached, reach) if stale else reach)
    return max(ends)


def _filled(elements: list[list], cached: int, length: int) -> bool:
    """Whether makeRests leaves a stream's cache alone: no gap from 0 to its cached end, which
    reaches the bar's end (otherwise a rest goes in and the cache is cleared)."""
    reach = 0
    for element in elements:  # sorted by offset
        if element[0] > reach:
            return False
        reach = max(reach, element[0] + element[3])
    return cached >= length


# --- one part, as music21 reads one MIDI track ----------------------------------------------


def _track_elements(score: symusic.Score, tracks: list[symusic.Track]) -> tuple[list[tuple], bool]:
    """The notes of `tracks` as one stream, grouped into chords.

    Drum notes give no token but, as in music21, they take part in chords, voices and ties.
    """
    notes: list[tuple[int, int, int]] = []
    for track in tracks:
        drum = track.is_drum
        notes.extend((start, end, _DRUM if drum else p) for start, end, p in _music21_ends(track))
    notes.sort(key=lambda note: note[0])  # stable: simultaneous notes keep track order
    return _group_chords(notes, score.tpq)


def _markers(score: symusic.Score) -> list[int]:
    """Ticks of time signature and key changes: music21 quantises a note's duration up to
    them when they are in the note's own MIDI track (files of format 0, or symusic's). Tempo
    changes are left out: in the usual format 1 they sit in the conductor track."""
    return sorted(event.time for event in (*score.time_signatures, *score.key_signatures))


def read_part(score: symusic.Score, tracks: list[symusic.Track]) -> list[_Measure]:
    """The measures music21 makes of one part (the notes of `tracks`, one MIDI track in music21):
    chords, quantisation, measures, voices and ties. `score` must count in ticks."""
    raw, voices = _track_elements(score, tracks)
    if not raw:
        return []
    bars, markers = _bar_lengths(score), _markers(score)
    tempos = [_best_match(tempo.time / score.tpq) for tempo in score.tempos]
    ends = [_best_match(tick / score.tpq) for tick in markers] + tempos
    measures = _make_measures(_quantize(raw, score.tpq, markers), bars, ends)
    if voices:
        for measure in measures:
            _make_voices(measure)
    _make_ties(measures, bars)
    return measures
