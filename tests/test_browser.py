"""`lstm-music serve` end to end: the real command, driven in headless Chromium with Playwright.

Uses the system's Chromium (Debian's `chromium` package), never a downloaded browser. Opens the
page, refuses a bad upload on the page, generates with a seed from the keyboard, waits for a
playable audio element, fetches and parses the MIDI link, checks the narrow layout, saves
screenshots to test-artifacts/, and stops the server with Ctrl-C (SIGINT): it exits 0 and
leaves no temporary folder behind.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import symusic

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
from conftest import make_tiny_runs  # noqa: E402

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt install chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(page, script: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression from outside the page (the page's CSP forbids eval, which
    Playwright's wait_for_function would need)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real `lstm-music serve` on a free port; yields (url, process, its temp folder)."""
    runs = make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")
    temp = tmp_path_factory.mktemp("serve-tmp")
    port = free_port()
    command = [sys.executable, "-m", "lstm_music", "serve", "--port", str(port)]
    command += ["--runs", str(runs)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "serve printed nothing in 60 s"
        assert url in process.stdout.readline()  # the command prints where to look
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "server died"
                time.sleep(0.1)
        yield url, process, temp
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _fresh_page(browser, url: str):
    """A new visitor (nothing remembered) on the page, once it has loaded its models."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === 'true'")
    return context, page


def test_the_page_opens_on_the_newest_run_and_strict_waits_for_a_key(
    served, browser, tmp_path_factory
) -> None:
    """Run before the test below, which stops the server."""
    url = served[0]
    runs = make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")
    newest = time.time() + 100
    os.utime(runs / "nested" / "again" / "best.safetensors", (newest, newest))
    context, page = _fresh_page(browser, url)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    assert page.input_value("#model") == "nested-again"  # the run trained last
    wait_until(page, "document.querySelector('#model-info h3')?.textContent === 'nested/again'")

    # Strict: off and greyed until a key is typed; this model has no key control: then strict
    strict = page.locator("#key-strict")
    assert not strict.is_checked() and strict.is_disabled()
    assert page.locator("#key-strict-why").is_hidden()
    page.fill("#key", "D-minor")
    assert strict.is_checked() and strict.is_disabled()
    assert "not trained with the key control" in page.locator("#key-strict-why").text_content()
    assert page.locator("#key-strict-why").is_visible()
    page.fill("#key", "")
    assert not strict.is_checked() and strict.is_disabled()

    # the primer's length in plain words, with what it comes to in notes for this model's tokens
    assert page.locator("label[for=primer-tokens]").text_content() == (
        "How much of the primer to continue from"
    )
    assert "roughly the last 29 notes" in page.locator("#primer-tokens-notes").text_content()
    page.fill("#primer-tokens", "35")
    assert "roughly the last 10 notes" in page.locator("#primer-tokens-notes").text_content()

    # a model the user chose is kept ... until a newer run appears
    page.select_option("#model", "tiny")
    wait_until(page, "document.querySelector('#model-info h3')?.textContent === 'tiny'")
    page.reload()
    wait_until(page, "document.body.dataset.ready === 'true'")
    assert page.input_value("#model") == "tiny"
    newer = newest + 100
    os.utime(runs / "exports" / "solo.safetensors", (newer, newer))
    page.reload()
    wait_until(page, "document.body.dataset.ready === 'true'")
    assert page.input_value("#model") == "exports-solo"
    assert problems == []
    context.close()


def test_generate_and_listen_in_a_real_browser(served, browser) -> None:
    url, process, temp = served
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    expected = "the server responded with a status of 400"  # the bad upload below
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === 'true'")
    page.select_option("#model", "tiny")
    wait_until(page, "document.querySelector('#model-info h3')?.textContent === 'tiny'")

    # a bad upload: a clear message on the page, and the page (and server) carry on
    page.set_input_files("#primer", files=[{"name": "bad.mid", "mimeType": "audio/midi",
                                           "buffer": b"not a MIDI file"}])  # fmt: skip
    page.click("#generate")
    wait_until(page, "document.querySelector('#error').textContent.includes('not a MIDI file')")
    page.set_input_files("#primer", files=[])

    # set a seed and a short length, then reach Generate with Tab and press Enter
    page.fill("#length", "6")
    page.fill("#seed", "7")
    page.focus("#seed")
    for _ in range(8):
        if page.evaluate("document.activeElement.id") == "generate":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "generate"
    page.keyboard.press("Enter")
    wait_until(
        page,
        "(() => { const a = document.querySelector('#history audio');"
        " return a !== null && a.readyState >= 1 && a.duration > 0; })()",
    )
    assert page.locator("#error").text_content() == ""
    assert "seed 7" in page.locator("#history .meta").first.text_content()
    assert "Wrote 1 piece" in page.locator("#status").text_content()
    card = page.locator("#history > li").first.bounding_box()  # scrolled into view, whole
    assert card["y"] >= 0 and card["y"] + card["height"] <= 900, card

    audio = page.request.get(page.locator("#history audio").first.evaluate("a => a.src"))
    assert audio.headers["content-type"] == "audio/wav" and audio.body()[:4] == b"RIFF"
    link = page.locator("#history a", has_text="Download MIDI").first
    midi = page.request.get(link.evaluate("a => a.href"))
    assert midi.ok and isinstance(symusic.Score.from_midi(midi.body()), symusic.Score)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)

    page.set_viewport_size({"width": 400, "height": 800})  # a phone: one column, no sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "web-page-narrow.png"), full_page=True)

    assert all(address.startswith(url) for address in requests), requests  # nothing external
    assert [problem for problem in problems if expected not in problem] == []
    context.close()

    process.send_signal(signal.SIGINT)  # Ctrl-C
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped" in output and "Traceback" not in output
    assert not list(temp.glob("lstm-music-serve-*"))  # the temporary folder went with it
