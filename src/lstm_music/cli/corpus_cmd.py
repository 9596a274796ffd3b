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
