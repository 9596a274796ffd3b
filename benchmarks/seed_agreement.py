"""How closely the `seed` tokenizer reproduces music21's tokens for the seed's 92 MIDI files.

`reference-tokens-music21.json` (in ../shared/datasets/seed-midi) holds, per file, music21
10.5.1's tokens for each part it parses. For each reference part we encode the matching symusic
track as a score of its own (keeping the file's tpq and time signatures) and compare the two
token lists with difflib's ratio; the overall figure weights files by reference length.

Matching parts to tracks: music21 makes one part per MIDI track with notes, symusic one track
per (MIDI track, channel). When both count the same, the k-th part is the k-th symusic track
with notes. Otherwise (9 files: one-track files with two channels, AT.mid with 14) each part is
matched to the best of: every single track and all tracks read as one part (one MIDI track).

The second table is what `prepare --tokenizer seed --tracks separate` makes of each file (its
pieces from `load_pieces` with prepare's track options: drum tracks dropped, silences cut) against
the same reference parts, matched the same way; symusic's tracks being channels, a one-track
file with two channels gives two pieces where music21 reads one part (see RESULTS.md).

The last two are the seed's own output (`seed`: `partitionByInstrument`'s first part, which
merges the tracks of one instrument) for the 72 files where it is not empty, against the piece
that `--tracks seed` gives (several tracks are read as music21's merged part), then the one that
`--tracks merge` gives (every track in one piano track: chords across the hands, which the seed
never makes; for comparison only).

    python benchmarks/seed_agreement.py [--reference PATH] [--midi-dir DIR] [--worst N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from difflib import SequenceMatcher
from pathlib import Path

import symusic

from lstm_music.corpus.prepare import PrepareConfig
from lstm_music.tokens.midi import load_pieces
from lstm_music.tokens.seed import SeedTokenizer
from lstm_music.tokens.seed.music21_parts import part_tokens

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MIDI_DIR = SHARED / "datasets" / "seed-midi"
REFERENCE = MIDI_DIR / "reference-tokens-music21.json"


def ratio(ours: list[str], reference: list[str]) -> float:
    """difflib's similarity of two token lists (1.0 = identical)."""
    if not ours and not reference:
        return 1.0
    return SequenceMatcher(None, ours, reference, autojunk=False).ratio()


def _track_scores(score: symusic.Score) -> list[symusic.Score]:
    """Each track with notes as a score of its own (same tpq, tempos, time signatures)."""
    out = []
    for track in score.tracks:
        if len(track.notes):
            single = score.copy()
            single.tracks = symusic.Score(score.tpq).tracks
            single.tracks.append(track.copy())
            out.append(single)
    return out


def file_candidates(path: Path, tokenizer: SeedTokenizer) -> list[list[str]]:
    """Our tokens for each track with notes, then for all tracks read as one part."""
    score = symusic.Score(str(path))
    tracks = [tokenizer.encode(single) for single in _track_scores(score)]
    return [*tracks, part_tokens(score, list(score.tracks))]


def match_parts(parts: list[list[str]], candidates: list[list[str]]) -> list[list[str]]:
    """Our tokens for each reference part (by track order when the counts agree, else best)."""
    tracks = candidates[:-1]
    if len(tracks) == len(parts):
        return tracks
    return [max(candidates, key=lambda ours, ref=ref: ratio(ours, ref)) for ref in parts]


def measure_agreement(
    midi_dir: Path = MIDI_DIR, reference_json: Path = REFERENCE
) -> tuple[dict[str, tuple[float, int]], float]:
    """Per file (agreement, reference tokens) and the overall agreement weighted by length."""
    reference = json.loads(Path(reference_json).read_text())["files"]
    tokenizer = SeedTokenizer()
    per_file: dict[str, tuple[float, int]] = {}
    for name in sorted(reference):
        parts = [part["tokens"] for part in reference[name]["tracks"]]
        ours = match_parts(parts, file_candidates(Path(midi_dir) / name, tokenizer))
        length = sum(len(ref) for ref in parts)
        matched = sum(ratio(mine, ref) * len(ref) for mine, ref in zip(ours, parts))
        per_file[name] = (matched / length if length else 1.0, length)
    total = sum(length for _, length in per_file.values())
    overall = sum(score * length for score, length in per_file.values()) / max(total, 1)
    return per_file, overall


def prepared_tokens(path: Path, tracks: str, tokenizer: SeedTokenizer) -> list[list[str]]:
    """Our tokens for each piece that `prepare --tokenizer seed --tracks <tracks>` makes."""
    options = PrepareConfig(inputs=[], out="", tokenizer="seed", tracks=tracks).track_options()
    return [tokenizer.encode(piece) for _, piece in load_pieces(path.read_bytes(), options)]


def measure_separate_agreement(
    midi_dir: Path = MIDI_DIR, reference_json: Path = REFERENCE
) -> tuple[dict[str, tuple[float, int]], float]:
    """Like `measure_agreement`, for the pieces of `--tracks separate` (by order when they are as
    many as the reference parts, else the best piece for each part)."""
    reference = json.loads(Path(reference_json).read_text())["files"]
    tokenizer = SeedTokenizer()
    per_file: dict[str, tuple[float, int]] = {}
    for name in sorted(reference):
        parts = [part["tokens"] for part in reference[name]["tracks"]]
        pieces = prepared_tokens(Path(midi_dir) / name, "separate", tokenizer)
        ours = match_parts(parts, [*pieces, []])  # no piece reads all the tracks as one part
        length = sum(len(ref) for ref in parts)
        matched = sum(ratio(mine, ref) * len(ref) for mine, ref in zip(ours, parts))
        per_file[name] = (matched / length if length else 1.0, length)
    total = sum(length for _, length in per_file.values())
    overall = sum(score * length for score, length in per_file.values()) / max(total, 1)
    return per_file, overall


def measure_seed_agreement(
    midi_dir: Path = MIDI_DIR, reference_json: Path = REFERENCE, tracks: str = "seed"
) -> tuple[dict[str, tuple[float, int]], float]:
    """Like `measure_agreement`, against the seed's own tokens (files where they are not empty),
    for the piece that `--tracks <tracks>` (seed or merge) makes of each file."""
    reference = json.loads(Path(reference_json).read_text())["files"]
    tokenizer = SeedTokenizer()
    per_file: dict[str, tuple[float, int]] = {}
    for name in sorted(reference):
        if seed := reference[name]["seed"]:
            [ours] = prepared_tokens(Path(midi_dir) / name, tracks, tokenizer)
            per_file[name] = (ratio(ours, seed), len(seed))
    total = sum(length for _, length in per_file.values())
    overall = sum(score * length for score, length in per_file.values()) / max(total, 1)
    return per_file, overall


def _print_table(
    title: str, per_file: dict[str, tuple[float, int]], overall: float, worst: int | None = None
) -> None:
    """The files, lowest agreement first (the `worst` lowest only, when given), and overall."""
    print(f"{title:<60} {'agreement':>9} {'tokens':>7}")
    ranked = sorted(per_file.items(), key=lambda item: item[1][0])
    for name, (score, length) in ranked[:worst]:
        print(f"{name:<60} {score:>9.4f} {length:>7}")
    print(f"{'overall (weighted by reference tokens)':<60} {overall:>9.4f}")


def encode_time(midi_dir: Path = MIDI_DIR, repeats: int = 3) -> float:
    """Seconds to tokenize every file once (whole scores, parsing excluded), best of `repeats`."""
    scores = [symusic.Score(str(path)) for path in sorted(Path(midi_dir).glob("*.mid"))]
    tokenizer = SeedTokenizer()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for score in scores:
            tokenizer.encode(score)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--midi-dir", type=Path, default=None, help="default: beside --reference")
    parser.add_argument("--worst", type=int, default=None, help="list only the N lowest files")
    args = parser.parse_args(argv)
    if not args.reference.exists():
        print(f"no reference at {args.reference}", file=sys.stderr)
        return 1
    midi_dir = args.midi_dir or args.reference.parent
    per_file, overall = measure_agreement(midi_dir, args.reference)
    _print_table("per track: file", per_file, overall, args.worst)
    print(f"encode time, {len(per_file)} files (best of 3): {encode_time(midi_dir):.3f} s")
    print()
    separate, separate_overall = measure_separate_agreement(midi_dir, args.reference)
    _print_table(
        "per track, prepare --tracks separate: file", separate, separate_overall, args.worst
    )
    for tracks in ("seed", "merge"):
        print()
        seed_files, seed_overall = measure_seed_agreement(midi_dir, args.reference, tracks)
        title = f"merged part (`seed`), --tracks {tracks}: file"
        _print_table(title, seed_files, seed_overall, args.worst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
