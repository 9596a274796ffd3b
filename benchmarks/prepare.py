"""Benchmark `lstm-music prepare` against the seed blog's music21 `get_notes`, on one machine.

    python benchmarks/prepare.py            # full run: all 92 seed files, 10,000 synthetic files
    python benchmarks/prepare.py --quick    # smoke run: 5 music21 files, 200 synthetic files
    python benchmarks/prepare.py --memory 1000,50000 --baseline-src /tmp/base/src
        # parent peak RSS and files/s against an older checkout's src/ (e.g. `git archive HEAD
        # src | tar -x -C /tmp/base`), each run in a fresh interpreter; no music21 part

Not a test: it prints timings, ratios and peak memory. music21 runs in a child interpreter (so
this process never imports it and its memory never inflates the figures below); `prepare` is
timed in-process after a warm-up call (imports excluded), best of --repeat runs, each into a
fresh output folder (so nothing is reused from a cache). Peak memory is polled with psutil from a
separate monitor process, not a thread: a thread in this process would make the worker pool
switch from fork to forkserver.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/datasets/seed-midi"
GOALS = {"seed": 1000.0, "remi": 100.0}  # speed-up over music21, per file
MB = 1024 * 1024

MONITOR = r"""
import json, os, select, sys, psutil
parent, me, interval = psutil.Process(int(sys.argv[1])), os.getpid(), float(sys.argv[2])
peak = {"parent": 0, "children": 0, "total": 0, "max_children": 0}
print("ready", flush=True)
while not select.select([sys.stdin], [], [], interval)[0]:
    try:
        own = parent.memory_info().rss
        kids = [k for k in parent.children(recursive=True) if k.pid != me]
    except psutil.Error:
        break
    rss = 0
    for kid in kids:
        try:
            rss += kid.memory_info().rss
        except psutil.Error:
            pass
    peak["parent"], peak["children"] = max(peak["parent"], own), max(peak["children"], rss)
    peak["total"] = max(peak["total"], own + rss)
    peak["max_children"] = max(peak["max_children"], len(kids))
print(json.dumps(peak), flush=True)
"""


def get_notes(song_path: str, song_names: list[str]) -> list[str]:
    """The blog's `get_notes`, as published (only `.flat` is `.flatten()`: gone in music21 10)."""
    from music21 import chord, converter, instrument, note

    all_notes = []
    for song_name in song_names:
        stream = converter.parse(song_path + song_name)
        instru = instrument.partitionByInstrument(stream)
        if instru:  # noqa: SIM108 (as in the blog) if there are instrument parts, take the first
            notes = instru.parts[0].recurse()
        else:  # otherwise take the notes directly
            notes = stream.flatten().notes
        for element in notes:
            if isinstance(element, note.Note):
                all_notes.append(str(element.pitch))
            elif isinstance(element, chord.Chord):
                all_notes.append(".".join(str(n) for n in element.normalOrder))
    return all_notes


def music21_only(data: Path, count: int) -> None:
    """Child-process entry: time `get_notes` on the first `count` files, print JSON."""
    import music21  # imported before the clock starts, as `prepare`'s imports are

    names = sorted(p.name for p in data.glob("*.mid"))[:count]
    started = time.perf_counter()
    notes = get_notes(str(data) + "/", names)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "files": len(names), "tokens": len(notes)}
    print(json.dumps({**result, "version": music21.__version__}))


def time_music21(data: Path, count: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--data", str(data), "--music21-only", str(count)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_prepare(inputs: Path, tokenizer: str, workers: int, scratch: Path) -> tuple[float, Any]:
    """Seconds for one `prepare` call into a fresh folder, and its result."""
    from lstm_music.corpus.prepare import PrepareConfig, prepare

    out = Path(tempfile.mkdtemp(dir=scratch)) / "corpus"
    config = PrepareConfig(inputs=[str(inputs)], out=str(out), tokenizer=tokenizer, workers=workers)
    started = time.perf_counter()
    result = prepare(config, progress=False)
    seconds = time.perf_counter() - started
    shutil.rmtree(out.parent)
    return seconds, result


def best_of(repeat: int, call: Callable[[], tuple[float, Any]]) -> tuple[float, Any]:
    runs = [call() for _ in range(repeat)]
    return min(runs, key=lambda run: run[0])


def seed_available() -> str:
    """'' when the seed tokenizer imports, else why not."""
    try:
        from lstm_music.tokens import get_tokenizer

        get_tokenizer("seed")
    except Exception as error:  # any failure means: report the row as unavailable
        return f"{type(error).__name__}: {error}"
    return ""


def time_cli(data: Path, tokenizer: str, workers: int, scratch: Path) -> float:
    """Wall seconds of a fresh `lstm-music prepare` process, interpreter start included."""
    exe = Path(sys.executable).parent / "lstm-music"
    program = str(exe) if exe.exists() else shutil.which("lstm-music") or "lstm-music"
    out = Path(tempfile.mkdtemp(dir=scratch)) / "corpus"
    command = [program, "prepare", str(data), "--out", str(out), "--quiet"]
    command += ["--tokenizer", tokenizer, "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    shutil.rmtree(out.parent)
    return seconds


def make_synthetic(folder: Path, count: int, seed: int = 0) -> None:
    """`count` small random one-track piano pieces (50-300 notes) written with symusic."""
    from symusic import Note, Score, Track

    rng = random.Random(seed)
    for index in range(count):
        score, track, tick = Score(480), Track("piano", 0, False), 0
        for _ in range(rng.randint(50, 300)):
            tick += rng.choice((0, 0, 120, 240, 240, 480))
            duration = rng.choice((120, 240, 480, 960))
            track.notes.append(Note(tick, duration, rng.randint(36, 96), rng.randint(40, 110)))
        score.tracks.append(track)
        score.dump_midi(str(folder / f"{index:05d}.mid"))


def with_memory(call: Callable[[], tuple[float, Any]]) -> tuple[float, Any, dict[str, int]]:
    """Run `call` while a monitor process polls RSS of this process and all its descendants."""
    command = [sys.executable, "-c", MONITOR, str(os.getpid()), "0.05"]
    monitor = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert monitor.stdout is not None
    monitor.stdout.readline()  # "ready"
    try:
        seconds, result = call()
    finally:
        out, _ = monitor.communicate(input="")
    return seconds, result, json.loads(out)


def row(label: str, seconds: float, files: int, tokens: str, m21: float, goal: float = 0) -> None:
    """One line of the seed-files table: time, rate, ratio to music21 on the same files."""
    ratio = m21 / seconds
    verdict = "MET" if ratio >= goal else f"MISSED ({ratio / goal:.0%} of goal)"
    tail = f"  goal >= {goal:,.0f}x: {verdict}" if goal else ""
    print(f"{label:38} {seconds:9.3f} {files / seconds:9.1f} {tokens:>9} {ratio:10,.0f}x{tail}")


def bench_seed_files(args: argparse.Namespace, scratch: Path, m21: dict[str, Any]) -> None:
    """Part 1-2: music21 vs in-process `prepare` vs a cold CLI run, on the seed files."""
    files = len(list(args.data.glob("*.mid")))
    per_file = m21["seconds"] / m21["files"]
    extrapolated = m21["files"] < files
    print(f"\n== seed-midi: {files} files in {args.data}")
    note = f" (timed on {m21['files']}, EXTRAPOLATED per file)" if extrapolated else ""
    print(
        f"music21 {m21['version']} get_notes: {m21['seconds']:.2f} s for {m21['files']} files, "
        f"{m21['tokens']:,} tokens; {per_file * files:.1f} s for {files} files{note}"
    )
    print(f"{'run':38} {'seconds':>9} {'files/s':>9} {'tokens':>9}  vs music21 (same files)")
    m21_seconds = per_file * files
    tokens = "" if extrapolated else f"{m21['tokens']:,}"
    row("music21 get_notes (blog)", m21_seconds, files, tokens, m21_seconds)
    missing = seed_available()
    for tokenizer in ("seed", "remi"):
        if tokenizer == "seed" and missing:
            print(f"{'prepare --tokenizer seed':38} n/a: seed tokenizer unavailable ({missing})")
            continue
        run_prepare(args.data, tokenizer, 1, scratch)  # warm-up: imports, caches
        if tokenizer == "seed" or missing:
            print(f"{'':38} (workers started by {start_method()})")
        for workers in (2, 1):
            seconds, result = best_of(
                args.repeat, lambda t=tokenizer, w=workers: run_prepare(args.data, t, w, scratch)
            )
            label = f"prepare {tokenizer} workers={workers} (best of {args.repeat})"
            tokens = f"{len(result.corpus.ids):,}"
            row(label, seconds, files, tokens, m21_seconds, GOALS[tokenizer])
        seconds = time_cli(args.data, tokenizer, 2, scratch)
        row(f"CLI {tokenizer} -j 2 (cold, wall)", seconds, files, "", m21_seconds)


def bench_scale(args: argparse.Namespace, scratch: Path) -> None:
    """Part 3: `prepare --tokenizer remi` on a synthetic corpus, 1 and 2 workers, with memory."""
    folder = scratch / "synthetic"
    folder.mkdir()
    started = time.perf_counter()
    make_synthetic(folder, args.synthetic_files)
    made = time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.iterdir()) / MB
    print(
        f"\n== synthetic: {args.synthetic_files:,} random piano files (50-300 notes, "
        f"{size:.1f} MB), generated in {made:.1f} s (not timed below)"
    )
    print("memory: peak RSS polled every 50 ms by a monitor process; 'workers' = sum over all")
    print("descendant processes (forked processes share pages, so the sum over-counts)")
    print(f"{'run':16} {'seconds':>8} {'files/s':>8} {'tokens':>11} {'parent MB':>10} ", end="")
    print(f"{'workers MB':>11} {'total MB':>9} {'procs':>5}")
    for workers in (1, 2):
        seconds, result, peak = with_memory(
            lambda w=workers: run_prepare(folder, "remi", w, scratch)
        )
        ok = result.counts["ok"]
        print(
            f"{f'remi workers={workers}':16} {seconds:8.2f} {args.synthetic_files / seconds:8.0f} "
            f"{len(result.corpus.ids):11,} {peak['parent'] / MB:10.0f} "
            f"{peak['children'] / MB:11.0f} {peak['total'] / MB:9.0f} "
            f"{peak['max_children']:5}" + ("" if ok == args.synthetic_files else f" ok={ok}")
        )


def prepare_only(folder: Path, out: Path, workers: int) -> None:
    """Child-process entry: one `prepare` run; prints seconds, counts and this process's peak RSS.

    `ru_maxrss` is the kernel's exact high-water mark of this (the parent) process alone,
    workers excluded; it includes the imports (~100 MB), as a user's `lstm-music prepare` does.
    """
    import resource

    from lstm_music.corpus.prepare import PrepareConfig, prepare

    config = PrepareConfig(inputs=[str(folder)], out=str(out), tokenizer="remi", workers=workers)
    started = time.perf_counter()
    result = prepare(config, progress=False)
    seconds = time.perf_counter() - started
    usage, workers_usage = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, -1))
    peak, cpu = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime  # maxrss: KB on Linux
    workers_cpu = workers_usage.ru_utime + workers_usage.ru_stime  # -1: RUSAGE_CHILDREN, reaped
    run = {"seconds": seconds, "ok": result.counts["ok"], "tokens": int(len(result.corpus.ids))}
    print(json.dumps({**run, "peak": peak, "cpu": cpu, "workers_cpu": workers_cpu}))


def run_prepare_child(src: Path, folder: Path, workers: int, scratch: Path) -> dict[str, Any]:
    """`prepare_only` in a fresh interpreter importing lstm_music from `src`."""
    out = Path(tempfile.mkdtemp(dir=scratch)) / "corpus"
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--prepare-only", str(folder), str(out), str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    shutil.rmtree(out.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_memory(args: argparse.Namespace, scratch: Path) -> None:
    """Parent peak RSS and files/s of `prepare` (remi, 2 workers): this src against a baseline."""
    current = Path(__file__).resolve().parents[1] / "src"
    codes = [("new", current)] + ([("old", args.baseline_src)] if args.baseline_src else [])
    print(f"\n== parent memory: new = {current}, old = {args.baseline_src or '(none)'}")
    print("each run: a fresh interpreter, prepare --tokenizer remi -j 2 into a fresh folder;")
    print("parent peak = ru_maxrss of the parent process (workers excluded, imports included)")
    print(f"{'files':>7} {'code':4} {'seconds':>8} {'files/s':>8} {'tokens':>12} ", end="")
    print(f"{'parent MB':>10} {'parent CPU s':>13} {'all CPU s':>10} {'files/CPU s':>12}")
    for count in args.memory:
        folder = scratch / f"memory-{count}"
        folder.mkdir()
        make_synthetic(folder, count)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in codes}
        repeat = args.repeat if count <= 10_000 else 1  # a 50,000-file run takes minutes
        for _ in range(repeat):  # alternate new and old so load changes hit both alike
            for name, src in codes:
                run = run_prepare_child(src, folder, 2, scratch)
                runs[name].append({**run, "all_cpu": run["cpu"] + run["workers_cpu"]})
        best = {  # fastest wall time and least CPU of the repeats; the highest memory peak
            name: {
                **min(done, key=lambda r: r["seconds"]),
                "peak": max(r["peak"] for r in done),
                "all_cpu": min(r["all_cpu"] for r in done),
            }
            for name, done in runs.items()
        }
        for name, _ in codes:
            run = best[name]
            print(
                f"{count:7,} {name:4} {run['seconds']:8.1f} {count / run['seconds']:8.0f} "
                f"{run['tokens']:12,} {run['peak'] / MB:10.0f} {run['cpu']:13.1f} "
                f"{run['all_cpu']:10.1f} {count / run['all_cpu']:12.0f}"
                + ("" if run["ok"] == count else f" ok={run['ok']}")
            )
        if "old" in best:
            speed = best["old"]["seconds"] / best["new"]["seconds"]
            memory = best["old"]["peak"] / best["new"]["peak"]
            cpu = best["old"]["all_cpu"] / best["new"]["all_cpu"]
            print(
                f"{count:7,} new/old: files/s x{speed:.2f}, files per CPU second x{cpu:.2f}, "
                f"parent peak RSS / {memory:.1f}"
            )
        shutil.rmtree(folder)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="seed MIDI folder")
    parser.add_argument("--music21-files", type=int, help="time N files, extrapolate (all)")
    parser.add_argument("--synthetic-files", type=int, help="10,000; 0 = skip")
    parser.add_argument("--repeat", type=int, help="timed prepare runs, best kept (3)")
    parser.add_argument("--quick", action="store_true", help="5 music21 files, 200 synthetic")
    parser.add_argument(
        "--no-tqdm-monitor", action="store_true", help="diagnostic: stop tqdm's monitor thread"
    )
    parser.add_argument(
        "--memory",
        type=lambda text: [int(n) for n in text.split(",")],
        help="only the parent-memory runs, on these synthetic sizes, e.g. 1000,50000",
    )
    parser.add_argument(
        "--baseline-src", type=Path, help="with --memory: an older checkout's src/ to compare"
    )
    parser.add_argument("--music21-only", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--prepare-only", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    defaults = (5, 200, 1) if args.quick else (0, 10_000, 3)  # flags given win over --quick
    for name, value in zip(("music21_files", "synthetic_files", "repeat"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def start_method() -> str:
    """How `IsolatedPool` starts workers now, and why (it forks only with no other thread)."""
    import threading

    from lstm_music.corpus.workers import _start_method

    threads = ", ".join(t.name for t in threading.enumerate() if t.name != "MainThread")
    return f"{_start_method()}; other threads: {threads or 'none'}"


def load_average() -> str:
    """Other programs on the machine skew timings: printed before and after the run."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_machine(args: argparse.Namespace) -> None:
    import platform
    from importlib.metadata import version

    packages = " ".join(f"{n} {version(n)}" for n in ("symusic", "miditok", "tqdm", "numpy"))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {packages}")
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    if args.no_tqdm_monitor:
        import tqdm

        tqdm.tqdm.monitor_interval = 0  # no tqdm_monitor thread, so the worker pool can fork
        print("--no-tqdm-monitor: tqdm.monitor_interval = 0 in this process (not in the CLI run)")


def main() -> None:
    args = parse_args()
    if args.music21_only >= 0:
        music21_only(args.data, args.music21_only)
        return
    if args.prepare_only:
        folder, out, workers = args.prepare_only
        prepare_only(Path(folder), Path(out), int(workers))
        return
    if args.memory:
        print_machine(args)
        with tempfile.TemporaryDirectory(prefix="bench-prepare-") as scratch:
            bench_memory(args, Path(scratch))
        print(f"\nload average (1, 5, 15 min) at end: {load_average()}")
        return
    files = len(list(args.data.glob("*.mid")))
    if not files:
        sys.exit(f"no .mid files in {args.data}")
    print_machine(args)
    m21 = time_music21(args.data, args.music21_files or files)
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as scratch:
        bench_seed_files(args, Path(scratch), m21)
        if args.synthetic_files > 0:
            bench_scale(args, Path(scratch))
    print(f"\nload average (1, 5, 15 min) at end: {load_average()}")


if __name__ == "__main__":
    main()
