"""`lstm-music demo` wall time, as a user runs it: a fresh process each time, start-up included.

    python benchmarks/demo.py --repeat 3

Goal (issue 5): under 10 s on 2 CPU cores after set-up. Prints each run's stage timings (the
command's own line) and the median wall time; the last line is `demo_seconds=<median>`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    walls = []
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "lstm_music", "demo", "--out", out, "--seed", str(run)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            walls.append(time.perf_counter() - started)
        engines = {line.split()[-1] for line in result.stdout.splitlines() if ".wav" in line}
        timing = [line for line in result.stdout.splitlines() if line.startswith("written to")]
        print(f"run {run}: {walls[-1]:.2f} s wall ({', '.join(sorted(engines))}); {timing[0]}")
    median = statistics.median(walls)
    print(f"median {median:.2f} s; goal under 10 s: {'met' if median < 10 else 'NOT met'}")
    print(f"demo_seconds={median:.2f}")


if __name__ == "__main__":
    main()
