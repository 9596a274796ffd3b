"""`lstm-music corpus info DIR`: what a prepared corpus holds; `corpus builtin`: what ships."""

from __future__ import annotations

import argparse
import json

from lstm_music.cli.table import format_table


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "corpus",
        help="inspect a prepared corpus; list the built-in public-domain corpora",
        description="Inspect a corpus made by `lstm-music prepare` (info), or list the "
        "built-in public-domain collections that `prepare --builtin NAME` can use (builtin).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser(
        "info",
        help="pieces per split, tokens, vocabulary, instruments, skipped files",
        description="Pieces and tokens per split, vocabulary size, the instruments (General "
        "MIDI programs and drums, with their notes: corpora of --tracks instruments) and the "
        "files whose tracks shared an instrument and were merged, and every input file that "
        "was skipped or failed, with the reason.",
    )
    info.add_argument("corpus", metavar="CORPUS_DIR")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=run_info)
    builtin = actions.add_parser(
        "builtin",
        help="the built-in public-domain collections (for prepare --builtin NAME)",
        description="The public-domain collections bundled with music21 that `lstm-music "
        "prepare --builtin NAME --out DIR` converts to MIDI (once, cached under "
        "$LSTM_MUSIC_CACHE, else $XDG_CACHE_HOME/lstm-music, else ~/.cache/lstm-music) and "
        "prepares (several as one corpus: --builtin NAME,NAME or --builtin all): name, "
        "pieces (the count converted once cached, else about how many), composer and date, "
        'licence, and where the cache is. Converting needs music21: pip install "lstm-music'
        "[corpora]\". Collections whose encodings are restricted (music21's Essen folksongs: "
        "non-commercial only; Palestrina: rights reserved; Josquin: GPL) or taken from "
        "copyrighted modern editions (Monteverdi, trecento) are not offered.",
    )
    builtin.add_argument("--json", action="store_true", help="machine-readable output")
    builtin.set_defaults(run=run_builtin)
    add_import_parser(actions)


def add_import_parser(actions: argparse._SubParsersAction) -> None:
    from lstm_music.corpus.import_registry import SOURCES

    listed = "; ".join(f"{s.name} ({s.licence}: {s.what}; git clone {s.clone})" for s in SOURCES)
    command = actions.add_parser(
        "import",
        help="convert a clone of an openly licensed score collection to a MIDI folder",
        description="Convert a local clone of an openly licensed score collection (MusicXML, "
        "Humdrum or LilyPond) to MIDI, once, into the cache ($LSTM_MUSIC_CACHE, else "
        "$XDG_CACHE_HOME/lstm-music, else ~/.cache/lstm-music), then `lstm-music prepare "
        "FOLDER` reads it like any MIDI folder. Each file's own licence statement is checked "
        "(files that state another licence are left out, with the reason), one edition per "
        "work is kept, each file is converted by music21 (LilyPond for Mutopia) in an isolated "
        "process with time and memory limits, and the folder gets source.json (per file: "
        "source path, composer, title, licence as written, converter and version) and "
        "CREDITS.txt (the attribution CC BY asks for: keep it with anything trained on the "
        f"music). Without NAME: the collections. Collections: {listed}. Needs music21 and "
        'LilyPond: pip install "lstm-music[corpora]".',
    )
    command.add_argument("name", nargs="?", metavar="NAME", help="the collection")
    command.add_argument("path", nargs="?", metavar="PATH", help="its local clone")
    command.add_argument("--limit", type=int, help="only the first N files (a folder of its own)")
    command.add_argument("--piano-only", action="store_true",
                         help="only files whose instruments are pianos alone")  # fmt: skip
    command.add_argument("--workers", type=int, help="conversion processes (all cores)")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    from lstm_music.corpus.import_registry import SOURCES
    from lstm_music.corpus.importer import import_folder, summary

    if not args.name:
        rows = [(s.name, f"~{s.approx_files}", s.licence, s.what) for s in SOURCES]
        print(format_table(("name", "files", "licence", "what"), rows))
        print(
            "\nlstm-music corpus import NAME PATH   (PATH: a clone; git clone ADDRESS, see --help)"
        )
        return 0
    if not args.path:
        raise SystemExit("lstm-music corpus import: error: give the clone's PATH after NAME")
    folder, record = import_folder(args.name, args.path, args.limit, args.piano_only,
                                   args.workers, progress=not args.json)  # fmt: skip
    if args.json:
        print(json.dumps({"folder": str(folder), **record}, indent=1, ensure_ascii=False))
        return 0
    print(summary(record, folder))
    for entry in record["failures"][:10]:
        print(f"  failed: {entry['source']}: {entry['reason']}")
    print(f"then: lstm-music prepare {folder} --out runs/{args.name}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from lstm_music.corpus.store import Corpus

    summary = Corpus.load(args.corpus).summary()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    rows = [(name, s["pieces"], s["tokens"], s["hours"]) for name, s in summary["splits"].items()]
    print(f"corpus {summary['path']}")
    print(
        f"tokenizer {summary['tokenizer']}, vocabulary {summary['vocabulary_size']} tokens, "
        f"{summary['files']} input files"
    )
    print(format_table(("split", "pieces", "tokens", "hours"), rows))
    print("\n" + "\n".join(instrument_lines(summary)))
    problems = summary["problems"]
    if problems:
        print(f"\n{len(problems)} file(s) not used:")
        for problem in problems:
            print(f"  {problem['status']:8} {problem['source']}: {problem['reason']}")
    return 0


# what each track mode but instruments makes of a file's tracks, for `instrument_lines`
NO_INSTRUMENTS = {
    "merge": "every file's tracks merged into one piano stream",
    "separate": "each track a piece of its own, without its program",
    "seed": "the tracks of each file's first instrument, without their program",
    "programs": "the tracks of the chosen programs merged into one stream",
}


def instrument_lines(summary: dict, shown: int = 10) -> list[str]:
    """The instruments of a corpus (`Corpus.summary`) as a table, or why it has none; and the
    files whose tracks shared an instrument and were merged into one stream."""
    instruments = summary["instruments"]
    if not instruments:
        mode = summary["tracks"]
        how = NO_INSTRUMENTS.get(mode, "no programs in the tokens")
        return [f"instruments: not kept (--tracks {mode}: {how}; --tracks instruments keeps "
                "each track's program, and the drums)"]  # fmt: skip
    rows = [(i["program"] if i["program"] >= 0 else "drums", i["name"], i["notes"])
            for i in instruments]  # fmt: skip
    lines = [f"{len(instruments)} instrument(s):", format_table(("program", "name", "notes"), rows)]
    merged = summary["merged_tracks"]
    if merged["files"]:
        said = ", ".join(f"{i['name']} in {i['files']}" for i in merged["instruments"])
        files = merged["files"]
        more = f" and {len(files) - shown} more" if len(files) > shown else ""
        lines += [
            f"tracks that share one instrument were merged into one stream in {len(files)} "
            f"file(s) ({said}): {', '.join(files[:shown])}{more} "
            '(per file in manifest.json, "trimmed", "merged_tracks")'
        ]
    return lines


def builtin_rows() -> list[dict]:
    """Every built-in collection with its cache state (no music21 needed)."""
    from dataclasses import asdict

    from lstm_music.corpus.builtin import COLLECTIONS, cache_folder, read_source

    rows = []
    for collection in COLLECTIONS:
        folder = cache_folder(collection.name)
        source = read_source(folder)
        rows.append(
            {
                **asdict(collection),
                "cached": source is not None,
                "cache_folder": str(folder),
                "pieces": source["count"] if source else None,
            }
        )
    return rows


def run_builtin(args: argparse.Namespace) -> int:
    rows = builtin_rows()
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    table = [
        (
            row["name"],
            row["pieces"] if row["cached"] else f"~{row['approx_pieces']}",
            row["composer"],
            row["licence"],
            row["cache_folder"] if row["cached"] else "no",
        )
        for row in rows
    ]
    print(format_table(("name", "pieces", "composer/date", "licence", "cached"), table))
    print(
        "\nlstm-music prepare --builtin NAME[,NAME...|all] --out DIR"
        "   (first use converts: needs music21)"
    )
    return 0
