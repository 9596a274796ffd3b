"""`lstm-music serve`: the JSON API through FastAPI's test client, with a tiny trained model.

Covers listing (shipped and --runs), details, generation and the files served, and the safety
promises: unknown models, path tricks, bad uploads, out-of-range values, a burst of concurrent
requests (200 or 429, never 500), and the temporary folder gone when the app stops.
"""

from __future__ import annotations

import io
import shutil
import socket
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import symusic
from conftest import make_tiny_runs, random_melody

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from lstm_music.cli import main  # noqa: E402
from lstm_music.errors import LstmMusicError  # noqa: E402
from lstm_music.web import routes, server  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402
from lstm_music.web.job_queue import JobQueue, QueueFull  # noqa: E402
from lstm_music.web.markdown import markdown_to_html  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    work = tmp_path_factory.mktemp("web-work")
    app = create_app(runs, work, workers=1, max_queue=3, per_client=3)  # one client fills it
    with TestClient(app) as test_client:
        yield test_client


def generate(client, **body):
    return client.post("/api/generate", json={"model": "tiny", "tokens": 48, **body})


def midi_bytes(score: symusic.Score) -> bytes:
    return score.dumps_midi()


# ---------------------------------------------------------------- models


def test_models_lists_runs_and_skips_what_is_not_a_checkpoint(client) -> None:
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert {"tiny", "nested-again", "exports-solo"} <= set(models)
    assert not any("junk" in model_id or "broken" in model_id for model_id in models)
    sources = [m["source"] for m in models.values()]
    assert sources == sorted(sources, key=lambda source: source != "run")  # the user's runs first
    assert "bach-chorales" in models  # shipped models keep their names
    tiny = models["tiny"]
    assert tiny["source"] == "run" and tiny["tokenizer"] == "remi" and tiny["timed"]
    assert tiny["parameters"] > 0 and tiny["valid_loss"] > 0
    assert "path" not in tiny  # file locations never leave the server


def test_model_details_show_run_metrics_and_loss_curves(client) -> None:
    tiny = client.get("/api/models/tiny").json()
    assert tiny["metrics"]["steps"] == 3 and tiny["settings"]["LSTM sizes"] == [32]
    assert (
        tiny["metrics"]["training time"].endswith(" s")
        and "training minutes" not in tiny["metrics"]
    )
    for model_id in ("tiny", "nested-again"):  # the run's loss.png; one drawn from metrics.csv
        url = client.get(f"/api/models/{model_id}").json()["loss_curve_url"]
        picture = client.get(url)
        assert picture.status_code == 200 and picture.content.startswith(PNG_MAGIC)
    solo = client.get("/api/models/exports-solo").json()
    assert solo["loss_curve_url"] is None and solo["label"] == "exports/solo"
    assert client.get("/api/models/exports-solo/loss.png").status_code == 404


def test_shipped_model_card_is_shown_escaped(client, runs, tmp_path, monkeypatch) -> None:
    shutil.copy(runs / "tiny" / "best.safetensors", tmp_path / "toy.safetensors")
    (tmp_path / "toy.md").write_text(
        "# Toy\n\nA toy model <script>alert(1)</script> for **tests**.\n\n"
        "| split | loss |\n| --- | --- |\n| valid | 5.9 |\n\n"
        "- [home](https://example.org) and [trick](javascript:alert(1))\n\n"
        "```\nlstm-music train\n```\n"
    )
    monkeypatch.setattr("lstm_music.model.shipped.models_folder", lambda: tmp_path)
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert models["toy"]["source"] == "shipped"
    assert models["toy"]["summary"].startswith("A toy model")
    card = client.get("/api/models/toy").json()["card_html"]
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "<td>5.9</td>" in card and "<strong>tests</strong>" in card
    assert 'href="https://example.org"' in card and 'href="javascript' not in card
    assert "<pre><code>lstm-music train</code></pre>" in card


def test_every_figure_names_its_split(client) -> None:
    bach = client.get("/api/models/bach-chorales").json()
    assert (bach["valid_loss"], bach["test_loss"]) == (0.774, 0.708)  # the card's table
    assert "test split" in bach["summary"] and "held-out" not in bach["summary"]
    assert bach["metrics"]["training time"] == "17 s"
    assert all("minutes" not in name for name in bach["metrics"])
    script = (Path(server.__file__).parent / "static" / "app.js").read_text()
    assert "held-out loss" not in script and "training minutes" not in script
    assert "valid split loss" in script and "test split loss" in script


def test_training_times_read_as_people_say_them() -> None:
    from lstm_music.web.catalog import human_duration

    assert [human_duration(s) for s in (4.25, 17.0, 245, 7380)] == [
        "4.2 s", "17 s", "4 min 05 s", "2 h 03 min"]  # fmt: skip


def test_markdown_escapes_everything() -> None:
    html = markdown_to_html('## A "title" <b>\n\n* one `<i>`\n* two & three\n\nplain <img src=x>')
    assert html.startswith("<h4>A &quot;title&quot; &lt;b&gt;</h4>")
    assert "<li>one <code>&lt;i&gt;</code></li><li>two &amp; three</li>" in html
    assert "<p>plain &lt;img src=x&gt;</p>" in html


def test_markdown_refuses_script_links_and_images() -> None:
    for address in ("javascript:alert(1)", "JavaScript:alert(1)", "vbscript:x", "data:text/html,x"):
        html = markdown_to_html(f"[click]({address})")
        assert "<a" not in html and "href" not in html, address
    html = markdown_to_html('<a href="javascript:x">y</a> ![pixel](https://example.org/p.png)')
    assert "&lt;a href=&quot;javascript:x&quot;&gt;y&lt;/a&gt;" in html and "<img" not in html
    safe = markdown_to_html("[site](https://example.org/?a=1&b=2)")
    assert '<a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer">site</a>' in safe


def test_markdown_renders_the_shipped_cards_with_their_tables() -> None:
    from lstm_music.model.shipped import models_folder

    cards = sorted(models_folder().glob("*.md"))
    assert cards
    for card in cards:
        html = markdown_to_html(card.read_text(encoding="utf-8"))
        assert html.startswith("<h3>") and "<h4>" in html and "<h1>" not in html
        assert "<table><thead><tr><th>split</th>" in html and html.count("<tr>") >= 3
        assert "<pre><code" in html and "<script" not in html


# ---------------------------------------------------------------- generation


def test_generate_serves_valid_midi_wav_and_png(client) -> None:
    answer = generate(client, num=3, tokens=600, seed=1)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["seed"] == 1 and len(result["pieces"]) == 3
    heard = 0
    for piece in result["pieces"]:
        assert len(piece["id"]) == 32 and piece["settings"]["tokens"] == 600
        midi = client.get(piece["midi_url"])
        assert midi.headers["content-type"] == "audio/midi"
        assert symusic.Score.from_midi(midi.content).note_num() == piece["notes"]
        audio = client.get(piece["wav_url"])
        assert audio.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(audio.content)) as file:
            samples = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
        assert samples.size > 0
        heard += piece["notes"] > 0 and int(np.abs(samples).max()) > 0
        assert client.get(piece["png_url"]).content.startswith(PNG_MAGIC)
    assert heard >= 1  # a piece with notes sounds
    again = generate(client, num=3, tokens=600, seed=1).json()["pieces"]
    assert [p["notes"] for p in again] == [p["notes"] for p in result["pieces"]]
    history = client.get("/api/pieces").json()
    assert [p["id"] for p in history[:3]] == [p["id"] for p in reversed(again)]  # newest first
    assert client.get(f"/api/pieces/{again[0]['id']}").json()["number"] == again[0]["number"]


def test_length_in_seconds_and_a_fresh_seed(client) -> None:
    result = generate(client, tokens=None, seconds=2).json()
    assert result["pieces"][0]["seconds"] <= 2.01 and result["seed"] >= 1
    assert result["pieces"][0]["settings"]["seconds"] == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": 9}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"num": 0}, "num"),
        ({"num": 9}, "num"),
        ({"tokens": None, "seconds": 500}, "seconds"),
        ({"tokens": 10**6}, "tokens"),
        ({"seed": -1}, "seed"),
        ({"seconds": 5}, "not both"),
        ({"primer_tokens": 0}, "primer_tokens"),
        ({"primer_id": "../../etc/passwd"}, "primer_id"),
        ({"path": "/etc/passwd"}, "path"),  # unknown fields are refused
    ],
)
def test_out_of_range_values_are_422_with_a_clear_message(client, body, field) -> None:
    answer = generate(client, **body)
    assert answer.status_code == 422
    assert field in answer.json()["detail"]


def test_unknown_model_is_404_with_a_clear_message(client) -> None:
    answer = generate(client, model="no-such-model")
    assert answer.status_code == 404
    assert "unknown model 'no-such-model'" in answer.json()["detail"]
    assert client.get("/api/models/no-such-model").status_code == 404


def test_path_tricks_are_refused_without_touching_files(client, monkeypatch) -> None:
    served = []
    original = routes.FileResponse

    def spy(path, **options):
        served.append(path)
        return original(path, **options)

    monkeypatch.setattr(routes, "FileResponse", spy)
    for name in ("../../etc/passwd", "/etc/passwd", "tiny/../../etc/passwd", "..", "tiny\x00"):
        answer = generate(client, model=name)
        assert answer.status_code == 404, name
    for url in (
        "/api/models/..%2F..%2Fetc%2Fpasswd",
        "/api/models/%2Fetc%2Fpasswd/loss.png",
        "/api/models/..%2Ftiny/loss.png",
        "/api/pieces/..%2F..%2Fetc%2Fpasswd/midi",
        "/api/pieces/%2Fetc%2Fpasswd/wav",
        f"/api/pieces/{'0' * 32}/midi",  # well formed, not ours
        f"/api/pieces/{'0' * 32}/..%2F..%2Fetc%2Fpasswd",
        f"/api/pieces/{'A' * 32}/png",
        "/api/pieces/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/..%2F..%2Fapp.py",
        "/static/%2Fetc%2Fpasswd",
    ):
        answer = client.get(url)
        assert answer.status_code in (404, 422), url
        assert b"root:" not in answer.content
    assert served == []


# ---------------------------------------------------------------- uploads


def test_bad_uploads_get_clear_messages_and_the_server_goes_on(client) -> None:
    empty_score = symusic.Score(480)
    empty_score.tracks.append(symusic.Track("silent", 0, False))
    good = midi_bytes(random_melody(7, length=20))
    cases = [
        (b"", 400, "empty"),
        (b"hello, not music", 400, "not a MIDI file"),
        (good[:30], 400, "MIDI"),  # truncated
        (midi_bytes(empty_score), 400, "without notes"),
        (b"MThd" + bytes(2_100_000), 413, "too big"),
    ]
    for data, status, message in cases:
        answer = client.post("/api/primers", files={"file": ("x.mid", data, "audio/midi")})
        assert answer.status_code == status and message in answer.json()["detail"], answer.text
    primer = client.post("/api/primers", files={"file": ("mine.mid", good, "audio/midi")})
    assert primer.status_code == 200 and primer.json()["notes"] > 0
    answer = generate(client, primer_id=primer.json()["id"], primer_tokens=20)
    assert answer.status_code == 200 and answer.json()["pieces"][0]["primer"] == "mine.mid"
    assert generate(client, primer_id="0" * 32).status_code == 404


def test_a_streamed_body_is_cut_off_at_the_limit(client) -> None:
    def chunks():  # no Content-Length: the middleware counts while reading
        yield b"--x\r\nContent-Disposition: form-data; name=file; filename=a.mid\r\n\r\n"
        for _ in range(40):
            yield bytes(100_000)

    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    answer = client.post("/api/primers", content=chunks(), headers=headers)
    assert answer.status_code == 413 and "too big" in answer.json()["detail"]
    assert client.get("/api/status").status_code == 200


# ---------------------------------------------------------------- load and lifetime


def test_twenty_concurrent_requests_get_200_or_429(client) -> None:
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: generate(client, tokens=32, seed=i), range(20)))
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 429} and 200 in statuses, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
            assert "busy" in answer.json()["detail"]
    assert client.get("/api/status").json()["busy"] == 0


def test_a_full_queue_answers_429_with_retry_after(client, monkeypatch) -> None:
    state = client.app.state.web
    release = threading.Event()
    monkeypatch.setattr(state.generator, "run", lambda spec: release.wait(10) and (1, []))
    with ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(generate, client) for _ in range(3)]  # max_queue is 3
        deadline = time.monotonic() + 30
        while state.queue.busy < 3:
            assert time.monotonic() < deadline, "the three requests never reached the queue"
            threading.Event().wait(0.01)
        refused = generate(client)
        release.set()
        assert all(future.result().status_code == 200 for future in waiting)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "try again" in refused.json()["detail"]


def test_job_queue_refuses_when_full() -> None:
    import asyncio

    queue = JobQueue(workers=1, max_queue=1)
    gate = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(queue.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await queue.run(lambda: None)
        gate.set()
        assert await first is True

    asyncio.run(scenario())
    queue.shutdown()
    assert queue.busy == 0


def test_job_queue_holds_one_client_to_its_share() -> None:
    queue = JobQueue(workers=1, max_queue=3, per_client=1)
    gate = threading.Event()
    try:
        first = queue.submit(gate.wait, 5, client="10.0.0.1")
        with pytest.raises(QueueFull, match=r"this client \(10.0.0.1\) already holds 1 of"):
            queue.submit(gate.wait, 5, client="10.0.0.1")
        other = queue.submit(gate.wait, 5, client="10.0.0.2")  # another address still gets in
        gate.set()
        assert first.result(5) and other.result(5)
        deadline = time.monotonic() + 10
        while queue.busy:  # released in the futures' callbacks
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert queue.submit(lambda: 1, client="10.0.0.1").result(5) == 1  # its slot is back
    finally:
        gate.set()
        queue.shutdown()
    assert JobQueue(workers=1, max_queue=8).per_client == 4  # half the queue by default
    with pytest.raises(LstmMusicError, match="per-client"):
        create_app(None, max_queue=4, per_client=5)


def test_temporary_folder_is_removed_when_the_app_stops(runs, tmp_path) -> None:
    app = create_app(runs, tmp_path)
    with TestClient(app) as test_client:
        root = app.state.web.root
        piece = generate(test_client).json()["pieces"][0]
        assert (root / "pieces" / piece["id"] / "piece.wav").is_file()
    assert not root.exists() and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- page, docs, command line


def test_page_loads_nothing_from_the_internet(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<main" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "app.css"):
        text = (Path(server.__file__).parent / "static" / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
        assert client.get(f"/static/{name}").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/api/generate"]["post"]["summary"] == "Generate pieces"
    assert "429" in spec["paths"]["/api/generate"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_other_host_headers_are_refused_when_asked(runs) -> None:
    app = create_app(runs, allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app).get("/").status_code == 400  # Host: testserver (DNS rebinding)


def test_serve_help_and_missing_dependencies(capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--runs" in text and "127.0.0.1" in text and "429" in text
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 1
    assert 'pip install "lstm-music[web]"' in capsys.readouterr().err


def test_serve_warns_off_localhost_and_refuses_a_busy_port(capsys, monkeypatch) -> None:
    import uvicorn

    ran, configs = [], []

    def run(self) -> None:
        ran.append(self.config.host)
        configs.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert main(["serve", "--host", "0.0.0.0", "--port", str(free)]) == 0
    out = capsys.readouterr().out
    assert "reachable from the network" in out and f"http://127.0.0.1:{free}/" in out
    assert ran == ["0.0.0.0"]
    assert configs[0].timeout_keep_alive == server.KEEP_ALIVE_SECONDS > 0
    assert main(["serve", "--workers", "0"]) == 1  # checked before anything is printed
    captured = capsys.readouterr()
    assert "workers" in captured.err and "open" not in captured.out
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(LstmMusicError, match="in use"):
            server.check_port("127.0.0.1", busy.getsockname()[1])
    assert server.is_local("127.0.0.1") and server.is_local("::1")
    assert not server.is_local("0.0.0.0")


def test_local_host_names_and_upload_limits() -> None:
    from lstm_music.cli.serve_cmd import upload_bytes

    assert server.local_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert "127.0.0.2" in server.local_hosts("127.0.0.2")
    assert "[::1]" in server.local_hosts("::1")
    assert upload_bytes(2) == 2_000_000
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        with pytest.raises(LstmMusicError, match="max-upload-mb"):
            upload_bytes(bad)


def test_cross_site_posts_are_refused(client) -> None:
    body = {"model": client.get("/api/models").json()[0]["id"], "tokens": 16}
    evil = client.post("/api/generate", json=body, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    host = client.base_url.netloc.decode()  # what the page's own requests carry as Origin
    for origin in (f"https://{host}", f"http://{host}.evil.example", "null"):
        other = client.post("/api/generate", json=body, headers={"Origin": origin})
        assert other.status_code == 403, origin  # another scheme is another origin
    same = client.post("/api/generate", json=body, headers={"Origin": f"http://{host}"})
    assert same.status_code == 200


def test_a_cross_site_post_without_origin_is_refused(client) -> None:
    """A browser may leave Origin out; its Sec-Fetch-Site still says where the request came from."""
    body = {"model": client.get("/api/models").json()[0]["id"], "tokens": 16}
    for evil_site in ("cross-site", "same-site", "Cross-Site"):  # same-site: another port
        evil = client.post("/api/generate", json=body, headers={"Sec-Fetch-Site": evil_site})
        assert evil.status_code == 403 and "cross-site" in evil.json()["detail"], evil_site
    for fine in ("same-origin", "none"):  # the page itself; a typed address or bookmark
        answer = client.post("/api/generate", json=body, headers={"Sec-Fetch-Site": fine})
        assert answer.status_code == 200, fine


def test_a_malformed_json_body_is_named_as_such(client) -> None:
    headers = {"Content-Type": "application/json"}
    answer = client.post("/api/generate", content=b'{"model": tiny}', headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"] == "the body is not valid JSON (at byte 10)"


def test_idle_connections_are_closed(monkeypatch) -> None:
    """A client that connects and sends nothing, goes quiet after an answer, stops halfway
    through its request's headers, or drips them a byte at a time, is let go."""
    import uvicorn

    async def app(scope, receive, send) -> None:  # the smallest ASGI app
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = server.server_config(app, "127.0.0.1", port, keep_alive=1, header_timeout=1)
    config.lifespan = "off"
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not running.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        for request in (b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
                connection.sendall(request)
                received = b""
                while chunk := connection.recv(4096):  # b"": the server closed it
                    received += chunk
                assert received.startswith(b"HTTP/1.1 200") if request else received == b""
        with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0")  # half a request, then nothing
            assert connection.recv(4096) == b""  # closed (before the fix: timed out here)
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
            assert drip_until_closed(connection, rounds=100), "a dripped request held on"
    finally:
        running.should_exit = True
        thread.join(10)


def drip_until_closed(connection: socket.socket, rounds: int) -> bool:
    """Send one header byte per recv timeout; True once the server has closed the connection."""
    for _ in range(rounds):
        try:
            connection.sendall(b"a")
            if connection.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset: closed while we were sending
            return True
    return False


def test_serve_defaults_runs_to_the_runs_folder(tmp_path, capsys, monkeypatch) -> None:
    import uvicorn

    from lstm_music.web import app as web_app

    made = []
    original = web_app.create_app
    monkeypatch.setattr(
        web_app, "create_app", lambda runs, **kw: made.append(runs) or original(runs, **kw)
    )
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = str(probe.getsockname()[1])
    assert main(["serve", "--port", free]) == 0
    assert made[-1] is None and "--runs DIR adds" in capsys.readouterr().out
    (tmp_path / "runs").mkdir()
    assert main(["serve", "--port", free]) == 0
    assert made[-1] == Path("runs") and "./runs (the default --runs)" in capsys.readouterr().out
    assert main(["serve", "--port", free, "--runs", str(tmp_path)]) == 0
    assert made[-1] == tmp_path


def test_a_model_file_removed_after_listing_is_422_not_500(runs, tmp_path) -> None:
    private = tmp_path / "runs"
    shutil.copytree(runs / "tiny", private / "gone")
    (tmp_path / "work").mkdir()
    app = create_app(private, tmp_path / "work", workers=1, max_queue=3)
    with TestClient(app) as test_client:
        assert any(m["id"] == "gone" for m in test_client.get("/api/models").json())
        (private / "gone" / "best.safetensors").unlink()
        (private / "gone" / "last.safetensors").unlink()
        answer = test_client.post("/api/generate", json={"model": "gone", "tokens": 16})
    assert answer.status_code in (404, 422), answer.text
    assert str(private) not in answer.text


def test_listing_does_not_build_tokenizers(runs, monkeypatch) -> None:
    """Whether a model is timed comes from its tokenizer's class: building MidiTok's tokenizer
    for every file listed was slow, and a crafted config made it allocate gigabytes."""
    import lstm_music.tokens as tokenizers
    from lstm_music.web.catalog import Catalog

    def refuse(*args, **kwargs):
        raise AssertionError("listing built a tokenizer")

    monkeypatch.setattr(tokenizers, "tokenizer_from_config", refuse)
    monkeypatch.setattr(tokenizers, "get_tokenizer", refuse)
    catalog = Catalog(runs)
    entries = catalog.refresh()
    assert entries and all(catalog.summary(entry)["timed"] for entry in entries)


def test_a_job_failing_part_way_keeps_its_finished_pieces_and_no_orphans(
    runs, tmp_path, monkeypatch
) -> None:
    from lstm_music.generation import pipeline

    written = []
    real_write = pipeline._write

    def fail_second(piece, files, render, timings):
        if written:
            raise LstmMusicError("the synthesizer broke")
        written.append(files)
        return real_write(piece, files, render, timings)

    monkeypatch.setattr(pipeline, "_write", fail_second)
    work = tmp_path / "work"
    work.mkdir()
    with TestClient(create_app(runs, work, workers=1, max_queue=3)) as test_client:
        answer = generate(test_client, num=3, seed=1)
        assert answer.status_code != 500 and "synthesizer broke" in answer.text
        history = test_client.get("/api/pieces").json()
        midi_files = list(work.rglob("*.mid"))
    assert len(history) == 1  # the first piece was finished and joined the history
    assert len(midi_files) == 1, midi_files  # the failed piece's folder was removed
