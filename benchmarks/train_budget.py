"""Does `train --max-minutes M` keep to M? The whole command's wall time, per source tree.

    python benchmarks/train_budget.py FOLDER --minutes M [--files N] [--work DIR]
    python benchmarks/train_budget.py FOLDER --minutes M --baseline-src OLD/src   # + baseline

The README says --max-minutes covers the whole run (issue 19, point 12: `train --max-minutes 8`
ran 9 min 52 s, the closing report and start-up on top of the budget). Here:

1. the first --files N MIDI files of FOLDER (searched recursively, sorted; default 20) are
   linked into WORK/in and prepared once, before and outside any timing, with `prepare -q`
   (defaults) of the older tree when --baseline-src is given, else of this checkout. Both trees
   read the same corpus: its format (lstm-music-corpus version 1) is the same at 3a0bfbf and
   today, so either tree could prepare it; the older one is used so it reads only what it wrote;
2. for each tree (`baseline`: --baseline-src first on PYTHONPATH; `today`: this checkout's src/),
   one after the other, `python -m lstm_music train CORPUS --out WORK/run-NAME --max-minutes M
   --quiet` (flags this script does not know are passed on to every `train`), timed from
   before the process starts to after it exits (interpreter start and imports included, as a
   user's wall clock sees it); killed past 4 M + 3 minutes;
3. the table: wall seconds, wall / budget, seconds over the budget, exit status, whether the
   closing report was produced (report.json in the run folder, and the `verdict:` line that
   ends it on stdout), and the trainer's own line (`trained N steps ... stopped by ...`).

The machine's load average is printed at start and end: on a shared machine wall times are
inflated; the ratio to the budget is what to compare between trees in one run.
Last line: `today_wall_over_budget=X` (and `baseline_wall_over_budget=Y` on the line before).

    mkdir -p /tmp/base19 && git archive 3a0bfbf src | tar -x -C /tmp/base19
    python benchmarks/train_budget.py ../shared/datasets/seed-midi --minutes 1 \\
        --baseline-src /tmp/base19/src
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
MIDI = (".mid", ".midi")


def run_cli(src: Path, args: list[str], timeout: float, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m lstm_music ARGS` with `src` first on PYTHONPATH (the tree under test)."""
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, "-m", "lstm_music", *args]
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def link_files(folder: Path, count: int, into: Path) -> int:
    """The first `count` MIDI files of `folder` (recursive, sorted) as symlinks in `into`."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI and p.is_file())
    into.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(files[:count]):
        (into / f"{index:04d}_{path.name}").symlink_to(path.resolve())
    return min(count, len(files))


def prepare(src: Path, files: Path, corpus: Path, work: Path) -> None:
    """The corpus both trees train on, made once, before any timing."""
    result = run_cli(src, ["prepare", str(files), "--out", str(corpus), "-q"], 900, work)
    if result.returncode != 0:
        sys.exit(f"prepare failed ({result.returncode}): {result.stderr.strip()[-500:]}")


def time_train(
    name: str, src: Path, corpus: Path, args: argparse.Namespace, extra: list[str]
) -> dict[str, Any]:
    """One tree's `train --max-minutes M`, its wall time and what it left."""
    run = args.work / f"run-{name}"
    command = [
        "train",
        str(corpus),
        "--out",
        str(run),
        "--max-minutes",
        str(args.minutes),
        "--quiet",
        *extra,
    ]
    limit = args.minutes * 60 * 4 + 180
    started = time.perf_counter()
    try:
        result = run_cli(src, command, limit, args.work)
        code, out, err = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as error:
        code, out, err = "killed", str(error.stdout or ""), str(error.stderr or "")
    wall = time.perf_counter() - started
    trained = next((line for line in out.splitlines() if line.startswith("trained ")), "")
    budget = args.minutes * 60
    return {
        "tree": name,
        "budget": budget,
        "wall": wall,
        "ratio": wall / budget,
        "over": wall - budget,
        "rc": code,
        "report_json": (run / "report.json").is_file(),
        "verdict": any(line.startswith("verdict:") for line in out.splitlines()),
        "trained": trained,
        "stderr": err.strip().splitlines()[-1:] if code else [],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """The results, one row per tree."""
    print(
        "\n| tree | budget s | wall s | wall / budget | over by s | exit | report.json "
        "| verdict line | trainer's line |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
    for r in rows:
        yes = {True: "yes", False: "no"}
        print(
            f"| {r['tree']} | {r['budget']:.0f} | {r['wall']:.1f} | {r['ratio']:.2f} "
            f"| {r['over']:+.1f} | {r['rc']} | {yes[r['report_json']]} "
            f"| {yes[r['verdict']]} | {r['trained']} |"
        )
    for r in rows:
        if r["stderr"]:
            print(f"{r['tree']} stderr: {r['stderr'][0]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("folder", type=Path, help="a folder of MIDI files")
    parser.add_argument("--minutes", type=float, required=True, help="train --max-minutes")
    parser.add_argument("--files", type=int, default=20, help="first N files of FOLDER (20)")
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src/")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    args, extra = parser.parse_known_args()
    if args.minutes <= 0 or args.files < 1:
        parser.error("--minutes must be above 0 and --files at least 1")
    if args.baseline_src and not (args.baseline_src / "lstm_music").is_dir():
        parser.error(f"--baseline-src {args.baseline_src}: no lstm_music package there")
    with tempfile.TemporaryDirectory(prefix="train_budget_") as temporary:
        args.work = (args.work or Path(temporary)).resolve()
        args.work.mkdir(parents=True, exist_ok=True)
        trees = [("today", SRC)]
        if args.baseline_src:
            trees.insert(0, ("baseline", args.baseline_src.resolve()))
        print(
            f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at start"
        )
        count = link_files(args.folder, args.files, args.work / "in")
        prepare(trees[0][1], args.work / "in", args.work / "corpus", args.work)
        print(f"corpus: {count} files of {args.folder}, prepared by the {trees[0][0]} tree")
        rows = []
        for name, src in trees:
            rows.append(time_train(name, src, args.work / "corpus", args, extra))
            print(f"{name}: {rows[-1]['wall']:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
        print_table(rows)
        print(f"load average {os.getloadavg()[0]:.2f} at end")
    for row in rows:
        print(f"{row['tree']}_wall_over_budget={row['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
