"""The page's run view: a run's held-out report, computed by the library, through the API and on
the page (in headless Chromium, when it is installed)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from conftest import make_tiny_runs  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from lstm_music.errors import LstmMusicError  # noqa: E402
from lstm_music.evaluation.listening import ListeningTest, listening_dict  # noqa: E402
from lstm_music.model.runs import run_corpus  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")
    moved = tmp_path_factory.mktemp("report-runs")  # the tiny run, and one whose corpus is gone
    shutil.copytree(root / "tiny", moved / "tiny")
    shutil.copytree(root / "tiny", moved / "lost")
    config = json.loads((moved / "lost" / "config.json").read_text())
    config["corpus"] = str(moved / "no-such-corpus")
    (moved / "lost" / "config.json").write_text(json.dumps(config))
    shutil.copytree(root / "exports", moved / "exports")
    from lstm_music.corpus.store import Corpus
    from lstm_music.evaluation.report import run_report

    shutil.copytree(root / "tiny", moved / "reported")  # as `train` leaves it: with report.json
    run_report(moved / "reported", Corpus.load(run_corpus(moved / "reported")))
    saved = json.loads((moved / "reported" / "report.json").read_text())
    heard = ListeningTest(12, 40, 8, 30, 0.93, 0.85, 0.99, 5, 55, 4, "easy to tell apart",
                          real="valid split")  # as a larger corpus's would read  # fmt: skip
    saved["listening"] = listening_dict(heard)
    (moved / "reported" / "report.json").write_text(json.dumps(saved))
    return moved


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    app = create_app(runs, tmp_path_factory.mktemp("report-work"), workers=1, max_queue=3)
    with TestClient(app) as test_client:
        yield test_client


def test_a_run_names_its_report_and_the_report_has_the_figures(client, runs) -> None:
    details = client.get("/api/models/tiny").json()
    assert details["report_url"] == "/api/models/tiny/report"
    answer = client.get(details["report_url"])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["split"] == "valid" and report["pieces"] >= 1
    names = [p["name"] for p in report["predictors"]]  # "base" too, once one reads remi tokens
    assert names[0] == "model" and names[-2:] == ["unigram", "uniform"]
    assert report["copies"]["pieces"] == 4 and report["copies"]["seconds"] >= 0
    assert report["verdict"] and any("fewer than 5" in w for w in report["warnings"])
    listening = report["listening"]  # the tiny corpus's few valid pieces: refused, with why
    assert listening["summary"] and listening["real"] == "valid split"
    assert listening["ran"] or listening["refused"].startswith("too few")
    assert str(runs) not in answer.text and str(run_corpus(runs / "tiny")) not in answer.text


def test_the_report_is_computed_once_per_checkpoint(client, monkeypatch) -> None:
    first = client.get("/api/models/tiny/report").json()

    def refuse(*args, **kwargs):
        raise AssertionError("the kept report should have been served")

    monkeypatch.setattr("lstm_music.evaluation.report.held_out_report", refuse)
    assert client.get("/api/models/tiny/report").json() == first


def _refuse_to_score(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise LstmMusicError("scored afresh")

    monkeypatch.setattr("lstm_music.evaluation.report.held_out_report", refuse)


def test_the_report_train_wrote_is_served_as_it_is(client, runs, monkeypatch) -> None:
    _refuse_to_score(monkeypatch)  # nothing is scored: the run folder's report.json is current
    answer = client.get("/api/models/reported/report")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    saved = json.loads((runs / "reported" / "report.json").read_text())
    assert report["origin"] == "training"
    written = datetime.fromtimestamp((runs / "reported" / "report.json").stat().st_mtime, UTC)
    assert report["written"] == written.isoformat(timespec="seconds")
    assert report["verdict"] == saved["verdict"] and report["predictors"] == saved["predictors"]
    assert report["copies"] == saved["copies"] and report["gap"] == saved["gap"]
    assert report["listening"] == saved["listening"] and report["listening"]["summary"]


def test_a_stale_or_broken_report_json_is_scored_afresh(client, runs, monkeypatch) -> None:
    _refuse_to_score(monkeypatch)
    for name in ("stale", "broken", "huge", "pipe"):
        shutil.copytree(runs / "reported", runs / name)
    later = (runs / "stale" / "report.json").stat().st_mtime + 60  # trained on after the report
    os.utime(runs / "stale" / "best.safetensors", (later, later))
    (runs / "broken" / "report.json").write_text('{"split": "valid", "pieces": NaN}')
    (runs / "huge" / "report.json").write_bytes(b" " * 2_000_000)
    (runs / "pipe" / "report.json").unlink()
    os.mkfifo(runs / "pipe" / "report.json")  # read, it would hang the worker
    for name in ("stale", "broken", "huge", "pipe"):
        answer = client.get(f"/api/models/{name}/report")
        assert answer.status_code == 422, (name, answer.text)
        assert "scored afresh" in answer.json()["detail"], name
    assert client.get("/api/models/reported/report").json()["origin"] == "training"


def test_a_report_scored_by_the_server_says_so(client) -> None:
    report = client.get("/api/models/tiny/report").json()
    assert report["origin"] == "server"
    assert datetime.fromisoformat(report["written"]).tzinfo is not None


def test_runs_are_listed_newest_first_then_the_shipped_models(client, runs) -> None:
    """The page opens on the first model listed: the run trained last."""
    now = time.time()
    for age, name in enumerate(["lost/best.safetensors", "exports/solo.safetensors"]):
        os.utime(runs / name, (now + 100 - age, now + 100 - age))  # newer than the others
    models = client.get("/api/models").json()
    assert [m["id"] for m in models[:2]] == ["lost", "exports-solo"]
    os.utime(runs / "exports" / "solo.safetensors", (now + 200, now + 200))
    models = client.get("/api/models").json()
    assert [m["id"] for m in models[:2]] == ["exports-solo", "lost"]
    sources = [m["source"] for m in models]
    assert sources == sorted(sources, key=lambda source: source != "run")


def test_models_without_a_recorded_corpus_have_no_report(client, runs) -> None:
    assert client.get("/api/models/bach-chorales/report").status_code == 404
    solo = client.get("/api/models/exports-solo").json()
    assert solo["report_url"] is None
    answer = client.get("/api/models/exports-solo/report")
    assert answer.status_code == 422 and "does not record the corpus" in answer.json()["detail"]
    lost = client.get("/api/models/lost/report")
    assert lost.status_code == 422 and "no report" in lost.json()["detail"]
    assert str(runs) not in lost.text  # the server's folders stay on the server
    assert client.get("/api/models/nothing-here/report").status_code == 404


def test_the_page_shows_the_report_of_a_run(runs, tmp_path) -> None:
    """Click "How good is it?" on the tiny run: the verdict and the figures appear."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")
    uvicorn = pytest.importorskip("uvicorn")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium (apt install chromium)")
    server = uvicorn.Server(uvicorn.Config(create_app(runs, tmp_path), port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers):
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            _check_page(browser, f"http://127.0.0.1:{port}/")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(30)


def _wait(page, script: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout  # polled from outside: the page's CSP forbids eval
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.1)


def _check_page(browser, url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    _wait(page, "document.body.dataset.ready === 'true'")
    page.select_option("#model", "tiny")
    _wait(page, "document.querySelector('#model-info h3')?.textContent === 'tiny'")
    page.click("text=How good is it?")
    _wait(page, "document.querySelector('.report .verdict') !== null")
    assert page.locator(".report .verdict").text_content().startswith("Verdict: ")
    table = page.locator(".report .figures").text_content()
    assert "this model" in table and "unigram (train split)" in table
    assert "Copy check: 4 sampled pieces" in page.locator(".report").text_content()
    heard = page.locator(".report .listening").text_content()  # the tiny corpus: too few pieces
    assert heard.startswith("Listening test not run: too few") and "held-out piece" in heard
    assert page.locator(".report .warning").count() >= 1  # one held-out piece
    assert page.locator(".report .origin").text_content().startswith("Computed by this server")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-report.png"), full_page=True)
    page.select_option("#model", "reported")  # a run with train's report.json: shown at once
    _wait(page, "document.querySelector('#model-info h3')?.textContent === 'reported'")
    page.click("text=How good is it?")
    _wait(page, "document.querySelector('.report .verdict') !== null")
    assert page.locator(".report .origin").text_content().startswith("From training's report")
    heard = page.locator(".report .listening").text_content()
    assert heard.startswith("Listening test: easy to tell apart.")
    assert "4-bar excerpts from held-out ones 93% of the time (95% interval 85%–99%" in heard
    assert "30 excerpts of 8 sampled pieces against 40 excerpts of 12 held-out pieces" in heard
    page.select_option("#model", "bach-chorales")  # a shipped model: no report section
    _wait(page, "document.querySelector('#model-info h3')?.textContent === 'bach-chorales'")
    assert page.locator(".report").count() == 0
    assert problems == []
