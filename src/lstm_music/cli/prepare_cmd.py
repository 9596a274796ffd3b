"""`lstm-music prepare`: MIDI files and folders -> a token corpus."""

from __future__ import annotations

import argparse
import sys

from lstm_music.cli.corpus_cmd import instrument_lines
from lstm_music.cli.table import format_table
from lstm_music.errors import LstmMusicError

DESCRIPTION = """\
Turn MIDI files into a token corpus for training. INPUT is any mix of MIDI files and folders
(searched recursively for .mid/.midi). Files are read in parallel worker processes; a file that
is broken, crashes or hangs its worker is listed as skipped/failed with the reason, and the run
goes on. Re-running into the same --out folder re-tokenizes only files whose content changed.
If an input folder has sub-folders train/, valid/ (and test/), they give the split; otherwise
files are split by --valid-fraction/--test-fraction and --seed.

Built-in public-domain corpora: --builtin NAME (see `lstm-music corpus builtin`) converts
scores bundled with music21 to MIDI once, into ~/.cache/lstm-music/corpora/NAME
($LSTM_MUSIC_CACHE or $XDG_CACHE_HOME to move it), then prepares that folder, together with any
INPUT given. Several names separated by commas, or `all`, make one corpus of those collections
(each piece's source then starts with its collection's name). The first conversion needs
music21: pip install "lstm-music[corpora]". --builtin-limit N converts only the first N pieces
of each (into a folder of its own) for a quick try.

  lstm-music prepare --builtin bach-chorales --out runs/bach --tokenizer grid
  lstm-music prepare --builtin all --out runs/everything
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "prepare",
        help="turn MIDI files/folders into a token corpus",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="MIDI files and/or folders (or --builtin)"
    )
    parser.add_argument("--out", "-o", help="corpus folder to write (created or replaced)")
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="settings from a TOML file (its [prepare] table); flags override it",
    )
    _add_builtin_arguments(parser)
    group = parser.add_argument_group("tokens")
    group.add_argument(
        "--tokenizer",
        "-t",
        help="remi (default), tsd, midilike, structured "
        "(MidiTok); seed (the blog's note/chord names, no timing); grid (piano-roll "
        "steps)",
    )
    group.add_argument(
        "--grid-step",
        help="grid step: sixteenth (default), eighth, quarter, 1/16, or a number of quarter notes",
    )
    group = parser.add_argument_group("tracks")
    group.add_argument(
        "--tracks",
        choices=("merge", "separate", "seed", "programs", "instruments"),  # TRACK_MODES
        help="merge: all non-drum tracks as one piano stream (default); separate: "
        "each track a piece; seed: the tracks sharing the first track's "
        "instrument, as the blog; programs: only --programs; instruments: every "
        "instrument and the drums kept, in one stream with program tokens (tracks of one "
        "program merged; a MidiTok tokenizer; --programs, if given, limits the other instruments)",
    )
    group.add_argument("--programs", help="General MIDI programs to keep, e.g. 0,1,2 (0 = piano)")
    group.add_argument(
        "--drums",
        action="store_true",
        default=None,
        help="keep drum tracks (--tracks instruments always keeps them)",
    )
    group.add_argument(
        "--max-instruments",
        type=int,
        metavar="N",
        help="--tracks instruments: at most N instruments per piece, drums counted (8; 1-16); "
        "a file with more loses those with the fewest notes, said in the manifest",
    )
    group = parser.add_argument_group("controls (steer generation; remi tokenizer)")
    group.add_argument(
        "--controls",
        metavar="LIST",
        help="train with attribute controls: MidiTok's bar-level density (notes per bar), "
        "polyphony (notes at once) and key (pitch classes), and with --tracks instruments our "
        "instruments (the programs a piece plays, at its start); comma-separated, or default "
        "(all that fit the track mode); each is left out of a random half of the bars (or "
        "pieces) and a quarter of the pieces carry none, so the model also writes without "
        "them (generate --density, --polyphony, --key, --instruments)",
    )
    group = parser.add_argument_group("limits (a bad file never spoils the corpus)")
    group.add_argument("--max-notes", type=int, help="skip files with more notes (200000)")
    group.add_argument(
        "--max-silence",
        type=float,
        help="shorten silences longer than this many quarter notes (8; 0 = off)",
    )
    group.add_argument("--max-tokens", type=int, help="skip pieces with more tokens (1000000)")
    group.add_argument("--file-timeout", type=float, help="seconds allowed per file (60)")
    group.add_argument("--max-memory-mb", type=int, help="memory per worker, MB (2048)")
    group.add_argument("--workers", "-j", type=int, help="worker processes (default: all cores)")
    group = parser.add_argument_group("split")
    group.add_argument("--valid-fraction", type=float, help="share of files held out (0.1)")
    group.add_argument("--test-fraction", type=float, help="share of files for test (0)")
    group.add_argument("--seed", type=int, help="split seed (0)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _add_builtin_arguments(parser: argparse.ArgumentParser) -> None:
    from lstm_music.corpus.builtin_registry import ALL, COLLECTIONS

    group = parser.add_argument_group("built-in corpora (public domain, via music21)")
    names = ", ".join(collection.name for collection in COLLECTIONS)
    group.add_argument(
        "--builtin",
        metavar="NAME[,NAME...]",
        help=f"built-in collections, merged into one corpus: {names}, or {ALL} (converted to "
        "MIDI once and cached; `lstm-music corpus builtin` lists them)",
    )
    group.add_argument(
        "--builtin-limit",
        type=int,
        metavar="N",
        help="convert only the first N pieces of each --builtin (a quick try; cached separately)",
    )


# flags that map one-to-one onto PrepareConfig fields
FLAG_SETTINGS = (
    "out",
    "tokenizer",
    "tracks",
    "drums",
    "max_instruments",
    "max_notes",
    "max_silence",
    "max_tokens",
    "file_timeout",
    "max_memory_mb",
    "workers",
    "valid_fraction",
    "test_fraction",
    "seed",
    "controls",
)


def config_from_args(args: argparse.Namespace):  # -> PrepareConfig
    from lstm_music.corpus.prepare import PrepareConfig
    from lstm_music.settings import build_config, load_toml

    flags = {key: getattr(args, key) for key in FLAG_SETTINGS}
    flags["inputs"] = args.inputs or None
    toml = load_toml(args.config, "prepare") if args.config else {}
    if args.builtin is not None:
        folders = [str(folder) for folder in _builtin_paths(args)]
        flags["inputs"] = [*folders, *(args.inputs or toml.get("inputs") or [])]
    elif args.builtin_limit is not None:
        raise LstmMusicError("--builtin-limit goes with --builtin NAME")
    if args.grid_step is not None:
        from lstm_music.tokens.grid import parse_grid_step

        flags["grid_step"] = parse_grid_step(args.grid_step)
    if args.programs is not None:
        try:
            flags["programs"] = [int(p) for p in args.programs.split(",") if p.strip()]
        except ValueError as error:
            raise LstmMusicError("--programs takes numbers like 0,1,2") from error
    if not (flags["inputs"] or toml.get("inputs")):
        raise LstmMusicError("name at least one MIDI file or folder (INPUT), or --builtin NAME")
    if not (flags["out"] or toml.get("out")):
        raise LstmMusicError("--out CORPUS_DIR is required")
    return build_config(PrepareConfig, toml, flags)


def _builtin_paths(args: argparse.Namespace):  # -> list[Path]
    """Where the --builtin collections are cached (checked now, converted in `run`)."""
    from lstm_music.corpus.builtin import cache_folder, resolve_names

    return [cache_folder(name, args.builtin_limit) for name in resolve_names(args.builtin)]


def run(args: argparse.Namespace) -> int:
    from lstm_music.corpus.prepare import prepare

    config = config_from_args(args)  # every setting checked before a long conversion
    if args.builtin is not None:
        from lstm_music.corpus.builtin import builtin_folders, resolve_names

        builtin_folders(
            resolve_names(args.builtin),
            args.builtin_limit,
            args.workers,
            progress=not args.quiet,
            notify=None if args.quiet else _to_stderr,
        )
    result = prepare(config, progress=not args.quiet)
    print(summary(result))
    return 0


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _split_rows(info: dict) -> list[tuple]:
    return [(name, s["pieces"], s["tokens"], s["hours"]) for name, s in info["splits"].items()]


def summary(result) -> str:
    """The end-of-run report: pieces per split, then every file that was not used and why."""
    info = result.corpus.summary()
    counts = result.counts
    lines = [
        f"corpus {info['path']}: {info['tokenizer']} tokens, vocabulary {info['vocabulary_size']}",
        f"files: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed"
        f" ({result.reused} unchanged, reused) in {result.seconds:.1f} s",
        "",
        format_table(("split", "pieces", "tokens", "hours"), _split_rows(info)),
    ]
    if result.trimmed_files:
        totals = result.trimmed_quarters
        lines += [
            "",
            f"silence cut from {result.trimmed_files} file(s): "
            f"{totals['trailing_quarters']:,.0f} quarter notes after the last note, "
            f"{totals['capped_quarters']:,.0f} leading or over --max-silence"
            + (f", {totals['long_notes']:,} held notes shortened" if totals["long_notes"] else "")
            + ' (per file in manifest.json, "trimmed")',
        ]
    dropped = [f for f in result.corpus.manifest.get("files", [])
               if f.get("trimmed", {}).get("dropped_instruments")]  # fmt: skip
    if dropped:
        lines += ["", f"instruments over --max-instruments in {len(dropped)} file(s):"]
        lines += [f"  {f['source']}: {f['trimmed']['dropped_instruments']}" for f in dropped[:10]]
        if len(dropped) > 10:
            lines.append(f'  ... and {len(dropped) - 10} more (manifest.json, "trimmed")')
    if info["instruments"]:  # a corpus of --tracks instruments: which, and what was merged
        lines += ["", *instrument_lines(info)]
    if result.problems:
        lines += ["", "not used:"]
        lines += [f"  {p['status']:8} {p['source']}: {p['reason']}" for p in result.problems]
    if result.warnings:
        lines += [""] + [f"warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `lstm-music prepare`")
