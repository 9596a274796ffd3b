"""Live playback in the browser: time from pressing Play live to the first scheduled note, and
how often playback starves, with `lstm-music serve` and the shipped default model.

    python benchmarks/live.py --runs 20

Starts the real server on a free port, opens the page in headless Chromium (Debian's
/usr/bin/chromium) and presses Play live `--runs` times for a `--seconds` piece (2 minutes) at the
page's default sampling, a new seed each run. The page records `lstm-generate-pressed` and
`lstm-first-note` performance marks and counts the notes that arrived after their time had passed
(`window.lstmLive.starved`). A run ends when the whole piece has arrived (nothing can starve
after that), then Stop. The first run is the first press after the server started (the server
loads its first model in the background as it starts).

Goal (issue 14): first note at most 300 ms on 2 CPU cores; no starvation. Prints each run, the
median and worst, the machine's load, and last a line of key=value figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
GOAL_MS = 300
FIGURES = "({...window.lstmLive, conversation: undefined})"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def drain(stream) -> None:
    """Reads the server's log to its end, so that a full pipe never blocks the server."""
    for _line in stream:
        pass


def start_server(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lstm_music", "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 60)
    if not ready:
        process.kill()
        raise SystemExit("lstm-music serve printed nothing in 60 s")
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read()
                raise SystemExit(f"lstm-music serve did not start: {output}") from None
            time.sleep(0.1)


def wait_until(page, script: str, timeout: float) -> None:
    """Polls from outside (the page's CSP forbids the eval that wait_for_function needs)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {script}: {page.evaluate(FIGURES)}")
        time.sleep(0.05)


def one_run(page, seed: int, timeout: float) -> dict:
    page.fill("#seed", str(seed))
    started = time.perf_counter()
    page.click("#live-play")
    wait_until(page, "['finishing', 'done', 'error'].includes(window.lstmLive.state)", timeout)
    wall = time.perf_counter() - started
    figures = page.evaluate(FIGURES)
    if figures["state"] == "error":
        raise SystemExit(f"run with seed {seed}: {figures['error']}")
    marks = page.evaluate(
        "['lstm-generate-pressed', 'lstm-first-note'].map("
        "(name) => performance.getEntriesByName(name)[0]?.startTime ?? null)"
    )
    if figures["state"] == "finishing":
        page.click("#live-stop")
    figures["mark_ms"] = marks[1] - marks[0] if None not in marks else None
    figures["written_s"] = wall
    return figures


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms, worst {max(values):.0f} ms"


def measure(args: argparse.Namespace, url: str) -> list[dict]:
    """Opens the page and plays `args.runs` pieces; returns window.lstmLive's figures of each."""
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        wait_until(page, "document.body.dataset.ready === 'true'", 60)
        wait_until(page, "window.lstmLive.engine !== 'loading'", 60)
        model = page.evaluate("document.getElementById('model').value")
        engine = page.evaluate("window.lstmLive.engine")
        print(f"model {model}, sound engine {engine}, pieces of {args.seconds} s")
        page.select_option("#length-unit", "seconds")
        page.fill("#length", str(args.seconds))
        for run in range(1, args.runs + 1):
            figures = one_run(page, run, args.timeout)
            runs.append(figures)
            print(f"run {run:2d}: first note {figures['firstNoteMs']:.0f} ms (marks "
                  f"{figures['mark_ms']:.0f} ms), starved {figures['starved']}, "
                  f"{figures['notesReceived']} notes, later >= {figures['marginMs']} ms ahead, "
                  f"whole piece in {figures['written_s']:.1f} s"
                  f"{' (first press after start)' if run == 1 else ''}", flush=True)  # fmt: skip
        browser.close()
    return runs


def report(runs: list[dict]) -> None:
    first = [run["firstNoteMs"] for run in runs]
    starved = [run["starved"] for run in runs]
    print(f"first note: {summary(first)}; without the first press: {summary(first[1:] or first)}")
    print(f"starved notes: {sum(starved)} in {sum(1 for s in starved if s)} of {len(runs)} runs")
    met = max(first) <= GOAL_MS and sum(starved) == 0
    print(f"goal first note <= {GOAL_MS} ms and no starvation: {'met' if met else 'NOT met'}")
    figures = {
        "first_note_ms_median": round(statistics.median(first)),
        "first_note_ms_worst": round(max(first)),
        "starved": sum(starved),
        "runs": len(runs),
    }
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120, help="length of each piece")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a run may take")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"no Chromium at {args.chromium} (apt install chromium)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    port = free_port()
    server = start_server(port)
    try:
        runs = measure(args, f"http://127.0.0.1:{port}/")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(runs)


if __name__ == "__main__":
    main()
