"""General MIDI instruments: the constants of the `instruments` track mode, in one place.

`prepare --tracks instruments` keeps every track's General MIDI program, and the drums, in one
MidiTok token stream with `Program` tokens (drums are MidiTok's program -1). Reading (tokens.midi),
the tokenizer (tokens.miditok_adapter), decoding generated tokens (generation.generate) and the
piano roll (render.pianoroll) all take their names and limits from here.
"""

from __future__ import annotations

import re
from typing import Any

import symusic

INSTRUMENTS_MODE = "instruments"  # the track mode's name (tokens.midi.TRACK_MODES)
DRUM_PROGRAM = -1  # MidiTok's program of drum tracks
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0: where General MIDI plays drums
# a MIDI file has 16 channels and the drums take one: more melodic instruments would share
# channels, and a shared channel plays one program
MAX_MELODIC = 15
MAX_INSTRUMENTS = MAX_MELODIC + 1
DEFAULT_MAX_INSTRUMENTS = 8  # per piece; the ones with the fewest notes go over this cap
# MidiTok settings of the mode, over its defaults: every note preceded by its program (rather than
# a Program token at each change: the model never has to remember the current instrument), all
# tracks in one stream, drums as PitchDrum tokens (so transposition, which moves Pitch tokens
# only, leaves them alone)
PROGRAM_SETTINGS = {
    "use_programs": True,
    "one_token_stream_for_programs": True,
    "program_changes": False,
    "use_pitchdrum_tokens": True,
}
DRUMS = "drums"
# the 16 General MIDI families of 8 programs each, in program order
FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive",
    "sound effects",
)  # fmt: skip
GM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone",
    "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ",
    "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section",
    "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn",
    "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle",
    "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom",
    "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring",
    "Helicopter", "Applause", "Gunshot",
)  # fmt: skip


def instrument_of(track: symusic.Track) -> int:
    """The track's instrument as MidiTok numbers it: its program, or DRUM_PROGRAM for drums."""
    return DRUM_PROGRAM if track.is_drum else int(track.program)


def instrument_name(program: int) -> str:
    """The name shown for an instrument: "Drums", or the General MIDI name of the program."""
    if program == DRUM_PROGRAM:
        return "Drums"
    return GM_NAMES[program] if 0 <= program < len(GM_NAMES) else f"program {program}"


def family_of(program: int) -> str:
    """The General MIDI family ("piano", "bass", "strings", ...), or DRUMS."""
    return DRUMS if program == DRUM_PROGRAM else FAMILIES[program // 8]


# words for groups of programs that cross the families: what a musician calls "strings" includes
# the string ensembles (48-51), "choir" is 52-54, "winds" the reeds and pipes
ALIASES = {
    "strings": (*range(40, 48), *range(48, 52)),
    "choir": tuple(range(52, 55)),
    "winds": tuple(range(64, 80)),
}


def instrument_words() -> tuple[str, ...]:
    """Every word `programs_named` knows besides GM names and numbers, for messages."""
    return (*dict.fromkeys((*FAMILIES, *ALIASES)), DRUMS)


def programs_named(name: str) -> tuple[int, ...]:
    """The programs a word names: a family ("strings"), an alias, DRUMS, a General MIDI name,
    a number. For choosing instruments by name; an unknown name gives () for the caller to
    refuse. Spaces, hyphens and underscores are the same ("synth-lead", "synth lead")."""
    key = re.sub(r"[\s_-]+", " ", name.strip().lower())
    if key == DRUMS:
        return (DRUM_PROGRAM,)
    if key in ALIASES:
        return ALIASES[key]
    if key in FAMILIES:
        start = FAMILIES.index(key) * 8
        return tuple(range(start, start + 8))
    names = [gm.lower() for gm in GM_NAMES]
    if key in names:
        return (names.index(key),)
    if key.isdigit() and int(key) < len(GM_NAMES):
        return (int(key),)
    return ()


def fit_channels(score: symusic.Score) -> list[str]:
    """Fold melodic tracks past MAX_MELODIC into kept ones, so each instrument has a channel.

    A MIDI file has 16 channels and a writer gives the 17th track the first one's channel, where
    it plays the first one's program. The tracks with the most notes stay; each other one joins a
    kept track of its family, else the largest. Drum tracks are left alone. Returns the names of
    the folded instruments (empty when all fit)."""
    tracks = list(score.tracks)
    melodic = [i for i, track in enumerate(tracks) if not track.is_drum and len(track.notes)]
    if len(melodic) <= MAX_MELODIC:
        return []
    ranked = sorted(melodic, key=lambda i: -len(tracks[i].notes))
    kept, folded = ranked[:MAX_MELODIC], ranked[MAX_MELODIC:]
    for i in folded:
        family = family_of(tracks[i].program)
        same = [k for k in kept if family_of(tracks[k].program) == family]
        target = tracks[same[0] if same else kept[0]]
        target.notes.extend(tracks[i].notes)
        target.notes.sort()
    score.tracks = [track for i, track in enumerate(tracks) if i not in set(folded)]
    return [instrument_name(instrument_of(tracks[i])) for i in folded]


def instrument_tracks(tracks: list[symusic.Track], cap: int) -> tuple[list[symusic.Track], str]:
    """One track per instrument (tracks of one program merged; drums together), at most `cap`
    of them and MAX_MELODIC melodic ones; and a line saying what went over, or "".

    Over the cap, the instruments with the fewest notes go: they carry the least of the music.
    The kept ones stay in the order they first appear in the file."""
    groups: dict[int, list[symusic.Track]] = {}
    for track in tracks:
        groups.setdefault(instrument_of(track), []).append(track)
    merged = [_merged(program, group) for program, group in groups.items()]
    ranked = sorted(range(len(merged)), key=lambda i: -len(merged[i].notes))
    kept, melodic = set(), 0
    for i in ranked:
        drums = merged[i].is_drum
        if len(kept) < cap and (drums or melodic < MAX_MELODIC):
            kept.add(i)
            melodic += not drums
    if len(kept) == len(merged):
        return merged, ""
    dropped = [
        f"{instrument_name(instrument_of(merged[i]))} ({_notes(len(merged[i].notes))})"
        for i in ranked
        if i not in kept
    ]
    note = (f"{len(merged)} instruments, over the cap of {cap}: dropped the {len(dropped)} with "
            f"the fewest notes: {', '.join(dropped)}")  # fmt: skip
    return [track for i, track in enumerate(merged) if i in kept], note


def shared_instruments(tracks: list[symusic.Track]) -> list[dict[str, Any]]:
    """The instruments that several of `tracks` play, each {"program", "name", "tracks"}, in
    the order they first appear. `instrument_tracks` merges each into one stream (a melody and
    its accompaniment both on piano, common in pop arrangements, become one piano part), which
    the corpus manifest and prepare's summary say."""
    counts: dict[int, int] = {}
    for track in tracks:
        counts[instrument_of(track)] = counts.get(instrument_of(track), 0) + 1
    return [
        {"program": program, "name": instrument_name(program), "tracks": count}
        for program, count in counts.items()
        if count > 1
    ]


def _notes(count: int) -> str:
    return f"{count} note" if count == 1 else f"{count} notes"


def _merged(program: int, group: list[symusic.Track]) -> symusic.Track:
    """The group's tracks as one, named after its instrument (a lone track is kept as it is)."""
    if len(group) == 1:
        return group[0]
    track = symusic.Track(instrument_name(program), max(program, 0), program == DRUM_PROGRAM)
    for part in group:
        track.notes.extend(part.notes)
        track.pedals.extend(part.pedals)
    track.notes.sort()
    track.pedals.sort()
    return track
