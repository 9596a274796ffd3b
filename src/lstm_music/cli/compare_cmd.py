"""`lstm-music compare`: generated MIDI vs a corpus: copied passages and musical statistics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lstm_music.cli.table import format_table

DESCRIPTION = """\
Check generated music against the corpus the model learnt from.

Copies: for each generated piece, the longest run of consecutive notes (pitches and the timing
between them, on a 1/12-quarter grid) that also appears in one reference piece, and the share
of its 8-note n-grams found anywhere in the reference; a piece is flagged `copied` when that
share reaches --threshold. --transpose-invariant matches pitch intervals instead of pitches.

Statistics (after Yang & Lerch 2018): pitch-class histogram, pitch range, notes per bar,
inter-onset intervals, note lengths and polyphony; for each, the overlap (0..1) of its
distribution over the generated pieces with that over the reference split, next to the same
overlap between the corpus's valid and train pieces as a yardstick of what "close" means.
The held-out spread: the 5th to 95th percentile of the overlap with the train pieces of as many
valid pieces as there are generated ones, drawn at random 200 times. A statistic is `inside`
when the generated pieces' overlap with the train pieces is at least the spread's low end: no
further from the training music than real music the model never saw (closer counts as inside;
the copy check says whether that is copying). A warning says when fewer than 10 valid pieces
make the spread rough.

Listening test: the generated pieces and the corpus's held-out (valid) pieces (the valid and
test pieces together when valid alone is too small; with no valid pieces, those of --split)
cut into 4-bar excerpts, each described by 55 musical features (pitch-class, melodic and
chord-interval histograms, rhythm, onset grid, polyphony, velocity, and structure: bars
whose rhythm or pitches recur, a periodic bass); a logistic regression learns to tell them
apart, cross-validated by piece (no piece on both sides of a fold). Its balanced accuracy, with
a 95% interval (bootstrap over pieces), says in plain words whether these features can tell
the model from real music: about 50% means indistinguishable, near 100% easy to tell apart. It
needs at least 4 pieces and 16 excerpts on each side, else it says why it did not run.

The last line is the verdict: copies found or not; the listening test when it ran, which the
verdict rests on; how many statistics are inside the spread.
Pieces are listed in natural order (piece-2 before piece-10).
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare",
        help="generated MIDI vs a corpus: copies, statistics, a listening test",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("generated", nargs="+", metavar="GENERATED", help="MIDI files or folders")
    parser.add_argument(
        "--reference", required=True, metavar="CORPUS", help="a corpus made by `prepare`"
    )
    parser.add_argument("--split", choices=("train", "valid", "test"), default="train")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="flag a piece as copied from this share of its 8-note n-grams found (0.5)",
    )
    parser.add_argument(
        "--transpose-invariant",
        action="store_true",
        help="match melodies in any key (pitch intervals instead of pitches)",
    )
    parser.add_argument("--plot", metavar="DIR", help="write one PNG per statistic here")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from lstm_music.evaluation.compare import compare

    comparison = compare(
        args.generated,
        args.reference,
        split=args.split,
        threshold=args.threshold,
        transpose_invariant=args.transpose_invariant,
        progress=not args.json and sys.stderr.isatty(),
    )
    report = comparison.to_dict()
    if args.plot:
        report["plots"] = [str(png) for png in write_plots(report, Path(args.plot))]
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    return 0


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per statistic: reference vs generated distribution, overlap in the title."""
    from lstm_music.render.plots import plot_distributions

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stat in report["statistics"]:
        title = f"{stat['title']}: overlap {_fmt(stat['overlap'])}"
        if stat["valid_vs_train"] is not None:
            title += f" (valid vs train {_fmt(stat['valid_vs_train'])})"
        series = {
            f"reference ({report['split']})": stat["reference"],
            "generated": stat["generated"],
        }
        png = folder / f"{stat['name']}.png"
        written.append(plot_distributions(stat["bins"], series, png, title, stat["unit"]))
    return written


def print_report(report: dict[str, Any]) -> None:
    mode = ", transpose-invariant" if report["transpose_invariant"] else ""
    print(
        f"reference: {report['reference']} ({report['split']} split, "
        f"{report['reference_pieces']:,} pieces, {report['reference_notes']:,} notes{mode})"
    )
    rows = [
        (
            p["file"],
            p["notes"],
            p["longest_run"],
            _where(p),
            _percent(p["ngram_share"]),
            "COPIED" if p["copied"] else "no",
        )
        for p in report["pieces"]
    ]
    headers = ("piece", "notes", "longest run", "found at", f"{report['ngram']}-grams found")
    print(format_table((*headers, f"share >= {report['threshold']:g}"), rows))
    print()
    rows = [
        (
            s["title"] if s["name"] == "pitch_class" else f"{s['title']} ({s['unit']})",
            _fmt(s["generated_mean"]),
            _fmt(s["reference_mean"]),
            _fmt(s["overlap"]),
            _fmt(s["valid_vs_train"]),
            "-" if s["spread"] is None else f"{_fmt(s['spread'][0])}-{_fmt(s['spread'][1])}",
            {True: "yes", False: "NO", None: "-"}[s["inside"]],
        )
        for s in report["statistics"]
    ]
    headers = ("statistic", "generated mean", "reference mean", "overlap", "valid vs train")
    print(format_table((*headers, "held-out spread", "inside"), rows))
    print()
    print("\n".join(listening_lines(report["listening_test"])))
    for png in report.get("plots", []):
        print(f"wrote {png}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print(f"verdict: {report['verdict']['text']}")


def listening_lines(test: dict[str, Any] | None) -> list[str]:
    """The listening test's block: counts, then the figure and its words (or the refusal)."""
    if test is None:
        return ["listening test: not run"]
    lines = [
        f"listening test ({test['excerpt_bars']}-bar excerpts, {test['features']} features, "
        f"logistic regression, {test['folds'] or '-'} folds grouped by piece):",
        f"  generated: {test['generated_pieces']:,} pieces, {test['generated_excerpts']:,} "
        f"excerpts; {test['real']}: {test['real_pieces']:,} pieces, "
        f"{test['real_excerpts']:,} excerpts",
    ]
    if not test["ran"]:
        return [*lines, f"  not run: {test['refused']}"]
    return [
        *lines,
        f"  accuracy {test['accuracy']:.1%} (95% interval {test['low']:.1%}-{test['high']:.1%}; "
        f"50% is chance): {test['words']}",
    ]


def _where(piece: dict[str, Any]) -> str:
    if piece["reference_piece"] is None:
        return "-"
    return (
        f"note {piece['generated_note'] + 1} = {piece['reference_piece']} "
        f"note {piece['reference_note'] + 1}"
    )


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
