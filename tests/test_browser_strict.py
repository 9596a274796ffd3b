"""The page's Strict box in headless Chromium (when installed), on a model trained with the key
control and on one without: off and greyed until a key is typed; then the user's choice, off as
in the API, where the key can be a control; strict, and saying why, where it cannot."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")
uvicorn = pytest.importorskip("uvicorn")
from test_web_controls import SHIPPED, make_band_runs  # noqa: E402

from lstm_music.web.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt install chromium)")


def _wait(page, script: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout  # polled from outside: the page's CSP forbids eval
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    runs = make_band_runs(tmp_path_factory.mktemp("strict") / "runs")
    app = create_app(runs, tmp_path_factory.mktemp("strict-work"), workers=1, max_queue=3)
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers):
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(30)


def test_strict_waits_for_a_key_and_follows_the_models_key_control(url) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(url)
        _wait(page, "document.body.dataset.ready === 'true'")
        assert page.input_value("#model") == "band"  # the only run: the page opens on it
        strict, why = page.locator("#key-strict"), page.locator("#key-strict-why")
        assert not strict.is_checked() and strict.is_disabled() and why.is_hidden()

        page.fill("#key", "D-minor")  # a model with the key control: the user's choice, off
        assert not strict.is_checked() and strict.is_enabled() and why.is_hidden()
        strict.check()
        page.fill("#key", "D-major")
        assert strict.is_checked() and strict.is_enabled()  # typing keeps the choice
        page.fill("#key", "")
        assert not strict.is_checked() and strict.is_disabled()

        page.select_option("#model", SHIPPED)  # no key control: a key is only ever strict
        _wait(page, f"document.querySelector('#model-info h3')?.textContent === '{SHIPPED}'")
        assert not strict.is_checked() and strict.is_disabled() and why.is_hidden()
        page.fill("#key", "D-minor")
        assert strict.is_checked() and strict.is_disabled() and why.is_visible()
        page.select_option("#model", "band")  # back to the key control: off again, enabled
        _wait(page, "document.querySelector('#model-info h3')?.textContent === 'band'")
        assert not strict.is_checked() and strict.is_enabled() and why.is_hidden()
        browser.close()
