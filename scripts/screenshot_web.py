"""Regenerate docs/web-page.png: the `lstm-music serve` page after generating a few pieces.

    python scripts/screenshot_web.py                                   # the shipped default model
    python scripts/screenshot_web.py --runs runs --model example-model # a run of your own

Starts the app in this process on a free port, drives the page in headless Chromium (the
system's `chromium`, through Playwright; nothing is downloaded), generates one piece per seed
so the history shows several, and saves a full-page screenshot.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, help="folder of trained runs (as `serve --runs`)")
    parser.add_argument("--model", help="model id to select (default: the page's default)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web-page.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 1], help="one piece each")
    parser.add_argument("--seconds", type=float, default=16.0, help="length of each piece")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in pixels")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    return parser.parse_args()


def start_server(runs: Path | None):
    """The app under uvicorn in a thread; returns (server, thread, url)."""
    import uvicorn

    from lstm_music.web.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(runs), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}/"


def wait_until(page, script: str, timeout: float = 120.0) -> None:
    """Poll from outside: the page's Content-Security-Policy forbids wait_for_function's eval."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for: {script}")
        time.sleep(0.1)


def shoot(url: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(
            viewport={"width": args.width, "height": 900}, reduced_motion="reduce"
        )
        page.goto(url)
        wait_until(page, "document.body.dataset.ready === 'true'")
        if args.model:
            page.select_option("#model", args.model)
        wait_until(page, "document.querySelector('#model-info h3') !== null")
        if page.input_value("#length-unit") == "seconds":
            page.fill("#length", f"{args.seconds:g}")
        for count, seed in enumerate(args.seeds, start=1):
            page.fill("#seed", str(seed))
            page.click("#generate")
            wait_until(
                page,
                f"document.querySelectorAll('#history audio').length >= {count} && "
                "[...document.querySelectorAll('#history audio')].every(a => a.readyState >= 1)"
                " && !document.querySelector('#generate').disabled",
            )
        page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()


def main() -> None:
    args = parse_args()
    server, thread, url = start_server(args.runs)
    try:
        shoot(url, args)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
