"""The page's sampling sliders in headless Chromium: they show the chosen model's default
sampling and whose choice it is, an untouched slider is left out of the request (the server
then uses the model's choice), a moved one is sent and kept across a change of model."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, wait_until  # noqa: E402
from test_web_sampling import CHOSEN, tiny  # noqa: E402

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt install chromium)")


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """`lstm-music serve` over a model with a recorded choice and one without."""
    runs = tmp_path_factory.mktemp("slider-runs")
    tiny(runs / "chosen" / "best.safetensors", CHOSEN)
    tiny(runs / "plain" / "best.safetensors")
    port = free_port()
    command = [sys.executable, "-m", "lstm_music", "serve", "--port", str(port)]
    temp = tmp_path_factory.mktemp("slider-tmp")
    process = subprocess.Popen(command + ["--runs", str(runs)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "TMPDIR": str(temp)})  # fmt: skip
    try:
        assert select.select([process.stdout], [], [], 60)[0], "serve printed nothing in 60 s"
        process.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "server died"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.kill()
        process.wait()


def choose(page, model: str) -> None:
    page.select_option("#model", model)
    wait_until(page, f"document.querySelector('#model-info h3')?.textContent === '{model}'")


def shown(page) -> tuple[str, ...]:
    return tuple(page.locator(f"#{name}").text_content() for name in (
        "temperature-value", "temperature-origin", "top-p-value", "top-p-origin"))  # fmt: skip


def sent(page) -> dict:
    return json.loads(page.evaluate("JSON.stringify(window.lstmPage.requestBody())"))


def test_the_sliders_show_the_models_choice_and_send_only_a_change(page_url) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(page_url)
        wait_until(page, "document.body.dataset.ready === 'true'")
        choice = "the model's choice (listening test)"
        choose(page, "chosen")
        assert shown(page) == ("0.60", choice, "0.85", choice)
        assert not {"temperature", "top_p"} & set(sent(page))
        choose(page, "plain")
        assert shown(page) == ("1.00", "default", "0.95", "default")
        assert not {"temperature", "top_p"} & set(sent(page))

        page.evaluate("(() => { const s = document.getElementById('temperature');"
                      " s.value = '1.5'; s.dispatchEvent(new Event('input')); })()")  # fmt: skip
        assert shown(page)[:2] == ("1.50", "yours; the model's is 1.00")
        choose(page, "chosen")  # the moved slider keeps its value, the other follows the model
        assert shown(page) == ("1.50", "yours; the model's is 0.60", "0.85", choice)
        body = sent(page)
        assert body["temperature"] == 1.5 and "top_p" not in body

        page.fill("#length", "1")
        page.click("#generate")
        wait_until(page, "document.querySelector('#history .meta') !== null")
        meta = page.locator("#history .meta").first.text_content()
        assert "temperature 1.5" in meta and "top-p 0.85" in meta, meta
        assert problems == []
        browser.close()
