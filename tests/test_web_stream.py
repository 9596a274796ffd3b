"""POST /api/stream and POST /api/conversation through FastAPI's test client, tiny models.

The stream: events in the documented shape, notes in start order, the piece kept at the end;
a client that leaves stops the generator and frees its queue slot; a job that ends without its
last event ends the stream with an `error`; the caps, the 422s, 404 and 429 come before any
event. The conversation: its notes as a MIDI file symusic reads back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest
import symusic

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from conftest import make_tiny_runs  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from lstm_music.errors import LstmMusicError  # noqa: E402
from lstm_music.generation import stream as stream_module  # noqa: E402
from lstm_music.web import live  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402

PHRASE = [{"pitch": 60 + 2 * i, "start": 1.0 + 0.6 * i, "duration": 0.3, "velocity": 90}
          for i in range(4)]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    work = tmp_path_factory.mktemp("stream-work")
    app = create_app(runs, work, workers=1, max_queue=2, per_client=2)
    with TestClient(app) as test_client:
        yield test_client


def events_of(text: str) -> list[tuple[str, dict]]:
    """Server-sent events: `event: NAME`, `data: JSON`, a blank line."""
    events = []
    for block in text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            events.append((name[len("event: ") :], json.loads(data[len("data: ") :])))
    return events


def stream(client, **body) -> list[tuple[str, dict]]:
    with client.stream("POST", "/api/stream", json={"model": "tiny", **body}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return events_of(response.read().decode())


def streamed_notes(events) -> list[dict]:
    return [note for name, data in events if name == "notes" for note in data["notes"]]


def wait_idle(app, seconds: float = 10.0) -> int:
    """The queue's busy count once its worker has let go (it does so just after the last event)."""
    deadline = time.monotonic() + seconds
    while app.state.web.queue.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    return app.state.web.queue.busy


def test_a_stream_sends_notes_in_order_and_ends_with_the_kept_piece(client) -> None:
    events = stream(client, seconds=10, seed=3)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "end" and set(names[1:-1]) == {"notes"}
    start = events[0][1]
    assert start == {"model": "tiny", "seed": 3, "tempo": 120.0, "primer_seconds": 0.0,
                     "instruments": []}  # fmt: skip
    notes = streamed_notes(events)
    assert notes and all(set(note) == {"pitch", "start", "duration", "velocity", "program",
                                       "instrument"} for note in notes)  # fmt: skip
    assert [n["start"] for n in notes] == sorted(n["start"] for n in notes)
    assert all(n["start"] >= 0 and n["start"] + n["duration"] <= 10 + 1e-6 for n in notes)
    written = [data["written_seconds"] for name, data in events if name == "notes"]
    assert written == sorted(written) and written[-1] == pytest.approx(10.0)
    piece = events[-1][1]["piece"]
    assert client.get(f"/api/pieces/{piece['id']}").json() == piece
    assert piece["id"] in [p["id"] for p in client.get("/api/pieces").json()]
    assert piece["seed"] == 3 and piece["notes"] == len(notes) and piece["primer"] is None
    midi = symusic.Score.from_midi(client.get(piece["midi_url"]).content)
    in_file = Counter(
        (n.pitch, round(n.time / midi.tpq / 2, 3)) for t in midi.tracks for n in t.notes
    )
    assert in_file == Counter((n["pitch"], round(n["start"], 3)) for n in notes)  # 120 bpm
    for kind in ("wav", "png"):
        assert client.get(piece[f"{kind}_url"]).status_code == 200
    assert wait_idle(client.app) == 0
    assert "tempo" not in piece["settings"]  # none asked


def test_the_stream_is_the_generate_endpoint_s_piece(client) -> None:
    body = {"seconds": 8, "seed": 11, "temperature": 1.2}
    notes = streamed_notes(stream(client, **body))
    [made] = client.post("/api/generate", json={"model": "tiny", **body}).json()["pieces"]
    midi = symusic.Score.from_midi(client.get(made["midi_url"]).content)
    in_file = Counter(
        (n.pitch, round(n.time / midi.tpq / 2, 3)) for t in midi.tracks for n in t.notes
    )
    assert in_file == Counter((n["pitch"], round(n["start"], 3)) for n in notes) and notes


def recorded_streams(monkeypatch) -> list[stream_module.PieceStream]:
    """The streams the server makes from now on (those with a `should_stop`: not a warm-up)."""
    made: list[stream_module.PieceStream] = []

    class Recorded(stream_module.PieceStream):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if len(args) > 2 or "should_stop" in kwargs:
                made.append(self)

    monkeypatch.setattr(stream_module, "PieceStream", Recorded)
    return made


def test_a_client_that_leaves_stops_the_generator_and_frees_its_slot(client, monkeypatch) -> None:
    # one event may wait: the worker cannot finish a 2-minute piece before the client leaves
    # after its first event, and stalls for STALL_SECONDS (past wait_idle) unless it is stopped
    monkeypatch.setattr(live, "EVENTS_WAITING", 1)
    made = recorded_streams(monkeypatch)
    kept = len(client.get("/api/pieces").json())
    body = {"model": "tiny", "seconds": 120, "seed": 1}
    with client.stream("POST", "/api/stream", json=body) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: start"
        assert client.app.state.web.queue.busy == 1  # the stream holds its slot
    assert wait_idle(client.app, seconds=live.STALL_SECONDS / 3) == 0
    [generator] = made
    assert generator.piece is None  # stopped, so nothing to keep
    assert generator.generation.new.shape[1] < generator.generation.budget
    assert len(client.get("/api/pieces").json()) == kept


def test_a_client_that_takes_nothing_gets_an_error_after_the_stall(client, monkeypatch) -> None:
    for name, value in (("EVENTS_WAITING", 1), ("STALL_SECONDS", 0.5), ("POLL_SECONDS", 0.05)):
        monkeypatch.setattr(live, name, value)
    kept = len(client.get("/api/pieces").json())
    body = {"model": "tiny", "seconds": 120, "seed": 1}
    with client.stream("POST", "/api/stream", json=body) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: start"
        assert wait_idle(client.app) == 0  # the worker gave up on its slow client
        rest = [line for line in lines if line]  # the events it had sent, then the end
    names = [line for line in rest if line.startswith("event: ")]
    detail = json.loads(rest[-1].removeprefix("data: "))["detail"]
    assert names[-1] == "event: error" and set(names[:-1]) == {"event: notes"}
    assert detail.startswith("the stream stopped: its notes waited more than 0.5 s")
    assert len(client.get("/api/pieces").json()) == kept


def test_the_stall_allowed_is_proportionate_to_the_piece(client, monkeypatch) -> None:
    from lstm_music.generation.sampling import SamplingOptions

    stalls = [live.stall_seconds(SamplingOptions(seconds=s)) for s in (2, 20, 60, 120)]
    assert stalls == [live.MIN_STALL_SECONDS, 5.0, 15.0, 30.0] and live.STALL_SECONDS == 30
    assert live.stall_seconds(SamplingOptions(tokens=4096)) == 30.0
    # a stream that nobody reads gives up after its own stall (here 1% of its 60 s piece)
    for name, value in (("EVENTS_WAITING", 1), ("MIN_STALL_SECONDS", 0.1), ("POLL_SECONDS", 0.05),
                        ("STALL_FRACTION", 0.01)):  # fmt: skip
        monkeypatch.setattr(live, name, value)
    with client.stream("POST", "/api/stream", json={"model": "tiny", "seconds": 60}) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: start"
        assert wait_idle(client.app) == 0
        rest = [line for line in lines if line]
    assert "its notes waited more than 0.6 s" in rest[-1]


def test_one_client_cannot_hold_every_slot(runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(live, "EVENTS_WAITING", 1)
    app = create_app(runs, tmp_path, workers=1, max_queue=2, per_client=1)
    with TestClient(app) as client:
        body = {"model": "tiny", "seconds": 120, "seed": 1}
        with client.stream("POST", "/api/stream", json=body) as response:
            lines = response.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == "event: start"
            again = client.post("/api/stream", json=body)
            assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
            detail = again.json()["detail"]
            assert "this client (testclient) already holds 1 of the server's 2" in detail
            assert client.get("/api/status").json()["busy"] == 1  # the other slot is free
        assert wait_idle(app) == 0


def test_a_start_event_that_fails_is_an_answer_not_a_hang(client, monkeypatch) -> None:
    def failing(spec) -> list[str]:
        raise LstmMusicError("no instruments today")

    monkeypatch.setattr(live, "_asked_instruments", failing)
    response = client.post("/api/stream", json={"model": "tiny", "seconds": 5})
    assert response.status_code == 422 and response.json()["detail"] == "no instruments today"
    assert wait_idle(client.app) == 0


def test_a_client_that_leaves_during_the_render_gets_no_piece_kept(client, monkeypatch) -> None:
    put = live.EventChannel.put

    def leaving_at_the_end(self, name, data) -> bool:
        if name == "end":  # the client went while the WAV was written
            self.close()
        return put(self, name, data)

    monkeypatch.setattr(live.EventChannel, "put", leaving_at_the_end)
    generator = client.app.state.web.generator
    kept, folders = len(generator.pieces), set(generator.root.iterdir())
    events = stream(client, seconds=4, seed=5)
    assert events[-1][0] == "error" and "the stream stopped" in events[-1][1]["detail"]
    assert wait_idle(client.app) == 0
    assert len(generator.pieces) == kept and set(generator.root.iterdir()) == folders


def test_a_job_over_without_its_last_event_is_told_not_waited_for() -> None:
    async def events_of_jobs() -> list:
        channel = live.EventChannel(asyncio.get_running_loop())
        failed, cancelled, running = (concurrent.futures.Future() for _ in range(3))
        await asyncio.to_thread(channel.put, "notes", {"notes": []})
        failed.set_exception(RuntimeError("the disk went away"))
        cancelled.cancel()  # a job dropped at shutdown before a worker took it
        jobs = [asyncio.wrap_future(job) for job in (failed, cancelled, running)]
        got = [await channel.get(jobs[0]), await channel.get(jobs[0])]  # its event, then why
        got += [await channel.get(jobs[1]), await channel.get(jobs[2], timeout=0.05)]
        running.set_result(None)
        return got

    notes, failed, cancelled, waiting = asyncio.run(events_of_jobs())
    assert notes == ("notes", {"notes": []})
    assert failed == (live.STOPPED, "internal error (RuntimeError): the disk went away; the "
                                    "server keeps running")  # fmt: skip
    assert cancelled == (live.STOPPED, "the server is stopping") and waiting is None


def test_streams_are_left_out_of_the_retry_after_estimate(client) -> None:
    queue = client.app.state.web.queue
    before = list(queue._durations)
    stream(client, seconds=3, seed=4)
    assert wait_idle(client.app) == 0 and list(queue._durations) == before
    client.post("/api/generate", json={"model": "tiny", "seconds": 2})
    assert len(queue._durations) == min(len(before) + 1, queue._durations.maxlen)


def test_a_phrase_is_answered_after_it_in_its_tempo(client) -> None:
    events = stream(client, seconds=14, seed=2, tempo=100, phrase=PHRASE, primer_tokens=400)
    start = events[0][1]
    # the phrase's leading second is cut: it lasts 4 notes 0.6 s apart, the last 0.3 s long
    assert start["tempo"] == 100 and start["primer_seconds"] == pytest.approx(2.1, abs=0.08)
    notes = streamed_notes(events)
    assert notes and notes[0]["start"] >= start["primer_seconds"] - 0.05
    piece = events[-1][1]["piece"]
    assert piece["primer"] == "played phrase" and piece["notes"] == len(notes) + len(PHRASE)
    assert piece["settings"]["tempo"] == 100


def test_caps_and_bad_parameters_are_one_line_422s_before_any_event(client) -> None:
    note = {"pitch": 60, "start": 0.0, "duration": 0.5, "velocity": 80}
    bad = {
        "seconds": {"seconds": 121},
        "tokens": {"tokens": 5000},
        "primer_tokens": {"primer_tokens": 1001},
        "num": {"num": 1},
        "tempo": {"tempo": 10},
        "not both": {"phrase": [note], "primer_id": "0" * 32},
        "phrase.0.pitch": {"phrase": [{**note, "pitch": 128}]},
        "phrase.0.duration": {"phrase": [{**note, "duration": 0}]},
        "phrase.0.duration ": {"phrase": [{**note, "duration": 31}]},
        "phrase.0.velocity": {"phrase": [{**note, "velocity": 0}]},
        "phrase.0.start": {"phrase": [{**note, "start": math.nan}]},
        "phrase.0.loudness": {"phrase": [{**note, "loudness": 3}]},
        "phrase:": {"phrase": [note] * 2001},
        "seconds or tokens": {"seconds": 5, "tokens": 100},
    }
    for expected, body in bad.items():
        text = json.dumps({"model": "tiny", **body})  # NaN too, which httpx's json= refuses
        headers = {"content-type": "application/json"}
        response = client.post("/api/stream", content=text, headers=headers)
        assert response.status_code == 422, expected
        detail = response.json()["detail"]
        assert expected.strip() in detail and "\n" not in detail, (expected, detail)
    missing = client.post("/api/stream", json={"model": "no-such-model"})
    assert missing.status_code == 404 and "unknown model" in missing.json()["detail"]
    assert wait_idle(client.app) == 0


def test_a_phrase_the_model_cannot_read_is_refused_before_streaming(client) -> None:
    low = [{"pitch": 5, "start": 0.0, "duration": 0.5, "velocity": 80}]  # below the piano
    response = client.post("/api/stream", json={"model": "tiny", "phrase": low})
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith("the played phrase has no notes")
    assert wait_idle(client.app) == 0


def test_a_full_queue_answers_429_with_retry_after(runs, tmp_path) -> None:
    app = create_app(runs, tmp_path, workers=1, max_queue=1)
    with TestClient(app) as client:
        body = {"model": "tiny", "seconds": 120, "seed": 1}
        with client.stream("POST", "/api/stream", json=body) as response:
            lines = response.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines) == "event: start"
            busy = client.post("/api/stream", json=body)
            assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
            assert client.post("/api/generate", json={"model": "tiny"}).status_code == 429
        assert wait_idle(app) == 0
        assert client.post("/api/stream", json={**body, "seconds": 2}).status_code == 200


def test_a_conversation_becomes_one_midi_file(client) -> None:
    notes = [{"pitch": 60, "start": 0.0, "duration": 0.5, "velocity": 90},
             {"pitch": 36, "start": 0.5, "duration": 0.25, "velocity": 100, "program": -1},
             {"pitch": 40, "start": 1.0, "duration": 1.0, "velocity": 70, "program": 33},
             {"pitch": 64, "start": 2.5, "duration": 0.5, "velocity": 80, "program": 0},
             ]  # fmt: skip
    response = client.post("/api/conversation", json={"notes": notes, "tempo": 90})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/midi"
    assert response.headers["content-disposition"] == 'attachment; filename="conversation.mid"'
    score = symusic.Score.from_midi(response.content)
    seconds_per_tick = 60 / 90 / score.tpq
    tracks = {(t.is_drum, t.program): [(n.pitch, round(n.time * seconds_per_tick, 3))
                                       for n in t.notes] for t in score.tracks}  # fmt: skip
    assert tracks == {(False, 0): [(60, 0.0), (64, 2.5)], (True, 0): [(36, 0.5)],
                      (False, 33): [(40, 1.0)]}  # fmt: skip
    assert score.tempos[0].qpm == pytest.approx(90)


def test_a_conversation_s_limits_hold(client) -> None:
    note = {"pitch": 60, "start": 0.0, "duration": 0.5, "velocity": 90}
    many = client.post("/api/conversation", json={"notes": [note] * 20001})
    assert many.status_code == 422 and "notes" in many.json()["detail"]
    assert client.post("/api/conversation", json={"notes": [note] * 20000}).status_code == 200
    bad_bodies = (
        {"notes": []},
        {"notes": [{**note, "start": 3601}]},
        {"notes": [{**note, "program": 128}]},
        {"notes": [note], "tempo": 400},
    )
    for bad in bad_bodies:
        assert client.post("/api/conversation", json=bad).status_code == 422, bad


def test_the_live_endpoints_are_documented(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    live = paths["/api/stream"]["post"]
    assert live["summary"] and "text/event-stream" in live["responses"]["200"]["content"]
    for event in ("`start`", "`notes`", "`end`", "`error`", "primer_seconds", "written_seconds"):
        assert event in live["description"]
    assert {"phrase", "tempo"} <= set(
        client.get("/openapi.json").json()["components"]["schemas"]["StreamRequest"]["properties"]
    )
    talk = paths["/api/conversation"]["post"]
    assert talk["summary"] and "audio/midi" in talk["responses"]["200"]["content"]
