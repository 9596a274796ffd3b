"""`lstm-music serve` over real sockets: request bodies that stall or drip are let go, open
connections are capped, and GET /api/status answers all the while.

The server is the real app under uvicorn with our protocol (web.server.server_config), given a
small cap and short deadlines so each test takes seconds; the assertions wait generously.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_tiny_runs

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from lstm_music.web import server  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402

STALLED = (
    b"POST /api/conversation HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
)  # the headers, one byte of the promised body, then nothing
STATUS = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")


def start(app, **limits) -> tuple[uvicorn.Server, threading.Thread, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = uvicorn.Server(server.server_config(app, "127.0.0.1", port, **limits))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    return running, thread, port


@pytest.fixture
def serve(runs, tmp_path) -> Iterator[Callable[..., int]]:
    """`serve(**limits)`: the app on a free port with those limits (server_config's); its port."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve_with(**limits) -> int:
        running, thread, port = start(create_app(runs, tmp_path), **limits)
        started.append((running, thread))
        return port

    yield serve_with
    for running, thread in started:
        running.should_exit = True
        thread.join(15)


def stalled_client(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=15)
    connection.sendall(STALLED)
    return connection


def closed(connection: socket.socket, wait: float) -> bool:
    """True once the server has closed the connection (within `wait` seconds)."""
    connection.settimeout(wait)
    try:
        while chunk := connection.recv(4096):
            if chunk.startswith(b"HTTP/1.1 503"):  # turned away: it closes next
                continue
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def get_status(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(
            b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    return json.loads(body)


def test_a_stalled_body_is_let_go_and_status_answers_meanwhile(serve) -> None:
    """The issue's attack, scaled down: clients that promise a body and send one byte."""
    serving = serve(body_timeout=1, min_body_rate=100, max_connections=64)
    clients = [stalled_client(serving) for _ in range(12)]
    try:
        assert get_status(serving)["max_queue"] >= 1  # while they hold their connections
        held = [c for c in clients if not closed(c, wait=15)]
        assert not held, f"{len(held)} stalled bodies still hold their connections"
    finally:
        for connection in clients:
            connection.close()


def test_a_dripped_body_is_let_go_and_a_whole_one_answered(serve) -> None:
    serving = serve(body_timeout=1, min_body_rate=100, max_connections=64)
    with socket.create_connection(("127.0.0.1", serving), timeout=0.25) as connection:
        connection.sendall(STALLED)
        for _ in range(200):  # 4 bytes every 0.25 s: 16 bytes a second, under 100
            try:
                connection.sendall(b"    ")
                if connection.recv(4096) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        else:
            pytest.fail("a body dripped under the minimum rate held its connection")
    notes = [{"pitch": 60, "start": 0.0, "duration": 0.5, "velocity": 90}]
    body = json.dumps({"notes": notes}).encode()
    head = (f"POST /api/conversation HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", serving), timeout=15) as connection:
        connection.sendall(head.encode() + body)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"MThd" in answer


def test_past_the_cap_the_oldest_stalled_connection_makes_room(serve) -> None:
    """Body deadlines far off: only the cap can free connections here."""
    serving = serve(body_timeout=60, min_body_rate=1, max_connections=6)
    clients = [stalled_client(serving) for _ in range(10)]
    try:
        assert get_status(serving)["workers"] == 1  # answered although all 6 were taken
        deadline = time.monotonic() + 15
        while True:
            let_go = [i for i, c in enumerate(clients) if closed(c, wait=0.1)]
            if len(let_go) >= 5 or time.monotonic() > deadline:
                break
        assert len(let_go) >= 5, let_go  # 10 + the status request, 6 kept: 5 made room
        assert set(let_go) <= set(range(6)), let_go  # the oldest went first
    finally:
        for connection in clients:
            connection.close()


def test_the_cap_stays_under_the_open_file_limit(monkeypatch) -> None:
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    assert server.connection_cap(1000) == 128 and server.connection_cap(50) == 50
    config = server.server_config(None, "127.0.0.1", 8000)
    assert config.backlog == server.accept_batch(128) == 16  # uvicorn's own: 2,048 at once
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert server.connection_cap(1000) == 1000


def test_the_issue_s_attack_on_a_server_with_few_file_descriptors(tmp_path) -> None:
    """`lstm-music serve` itself, with 64 file descriptors: 150 clients that send headers and
    a byte of body do not stop it accepting, and GET /api/status answers while they wait."""
    import shutil
    import subprocess
    import sys

    if sys.platform != "linux" or shutil.which("bash") is None:
        pytest.skip("ulimit through bash, on Linux")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import lstm_music

    command = f"ulimit -n 64; exec {sys.executable} -m lstm_music serve --port {port}"
    source = str(Path(lstm_music.__file__).resolve().parents[1])  # this lstm_music, not another
    environment = {**os.environ, "PYTHONPATH": source}
    process = subprocess.Popen(["bash", "-c", command], cwd=tmp_path, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    clients: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                get_status(port)
                break
            except OSError:
                time.sleep(0.2)
        clients = [stalled_client(port) for _ in range(150)]
        assert get_status(port)["workers"] == 1  # before: accept failed, "Too many open files"
    finally:
        for connection in clients:
            connection.close()
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert "Too many open files" not in output, output[-2000:]
