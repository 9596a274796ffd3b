"""An uploaded primer is read and tokenized once per model reading, not once per request, and
gives the tokens that reading the whole file every time gave."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import symusic
from conftest import make_score, make_tiny_runs, random_melody

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from lstm_music.generation import primers  # noqa: E402
from lstm_music.model.checkpoint import load_checkpoint  # noqa: E402
from lstm_music.model.shipped import DEFAULT_MODEL  # noqa: E402
from lstm_music.tokens import TOKENIZER_NAMES, get_tokenizer  # noqa: E402
from lstm_music.tokens.midi import options_like, read_score, score_pieces  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return make_tiny_runs(tmp_path_factory.getbasetemp() / "web-runs")


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    app = create_app(runs, tmp_path_factory.mktemp("primer-work"), workers=1, max_queue=3)
    with TestClient(app) as test_client:
        yield test_client


def long_score(melodies: int = 60, signature=None, tempos: bool = False) -> symusic.Score:
    """Melodies end to end (60: 5,500 notes, past the 4,000 from which a primer's end is cut
    for 1,000 tokens), with gaps and velocities that vary; a time signature and tempo changes
    when asked."""
    score = symusic.Score(480)
    track = symusic.Track("piano", 0, False)
    offset = 0
    for seed in range(melodies):
        part = random_melody(seed, length=48)
        for note in (n for t in part.tracks for n in t.notes):
            velocity = 60 + seed % 40
            track.notes.append(
                symusic.Note(note.time + offset, note.duration, note.pitch, velocity)
            )
        if tempos or not seed:
            score.tempos.append(symusic.Tempo(offset, 80.0 + seed % 50 if tempos else 100.0))
        offset += part.end() + 480 * (seed % 3)
    score.tracks.append(track)
    if signature:
        score.time_signatures.append(symusic.TimeSignature(0, *signature))
    return score


def long_primer() -> bytes:
    return long_score().dumps_midi()


def whole_file_tokens(data: bytes, checkpoint, max_tokens: int) -> list[str]:
    """What every request computed before: the whole file read and tokenized, its end kept."""
    tokenizer = checkpoint.tokenizer()
    options = options_like(checkpoint.corpus_config, tokenizer.timed)
    [(_, piece)], _ = score_pieces(read_score(data), options)
    known = set(checkpoint.vocabulary)
    return [token for token in tokenizer.encode(piece) if token in known][-max_tokens:]


def counted(monkeypatch) -> list[int]:
    """Calls of the one primer reader's tokenizing step, from now on."""
    calls: list[int] = []
    real = primers.primer_end

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(primers, "primer_end", counting)
    return calls


def test_a_primer_is_tokenized_once_and_its_file_not_read_again(client, monkeypatch) -> None:
    data = long_primer()
    upload = client.post("/api/primers", files={"file": ("long.mid", data, "audio/midi")})
    assert upload.status_code == 200 and upload.json()["notes"] > 1000
    primer_id = upload.json()["id"]
    calls = counted(monkeypatch)
    body = {"model": "tiny", "tokens": 40, "seed": 3, "primer_id": primer_id}
    for primer_tokens in (20, 300, 20):
        answer = client.post("/api/generate", json={**body, "primer_tokens": primer_tokens})
        assert answer.status_code == 200, answer.text
    with client.stream("POST", "/api/stream", json={**body, "primer_tokens": 64}) as response:
        events = response.read().decode()
    assert response.status_code == 200 and "event: end" in events, events[-300:]
    assert len(calls) == 1, calls  # the first request read it; the others used what it kept
    state = client.app.state.web
    shutil.rmtree(state.root / "primers" / primer_id)  # the uploaded file is gone
    again = client.post("/api/generate", json={**body, "primer_tokens": 1000})
    assert again.status_code == 200 and again.json()["pieces"][0]["primer"] == "long.mid"
    assert len(calls) == 1


@pytest.mark.parametrize("model", ["tiny", DEFAULT_MODEL])
def test_the_kept_tokens_are_those_the_whole_file_gave(client, model, monkeypatch) -> None:
    data = long_primer()
    upload = client.post("/api/primers", files={"file": ("long.mid", data, "audio/midi")})
    state = client.app.state.web
    primer = state.primers.get(upload.json()["id"])
    checkpoint = load_checkpoint(state.catalog.get(model).path)
    calls = counted(monkeypatch)
    for max_tokens in (20, 333, 1000):
        expected = whole_file_tokens(data, checkpoint, max_tokens)
        assert primer.tokens(checkpoint, max_tokens) == expected and len(expected) == max_tokens
    assert len(calls) == 1


def test_a_primer_the_model_cannot_read_is_refused_each_time_without_rereading(
    client, monkeypatch
) -> None:
    high = make_score([(i * 480, 480, 127) for i in range(400)])  # above the tiny model's range
    upload = client.post(
        "/api/primers", files={"file": ("high.mid", high.dumps_midi(), "audio/midi")}
    )
    calls = counted(monkeypatch)
    body = {"model": "tiny", "tokens": 40, "primer_id": upload.json()["id"]}
    for _ in range(2):
        answer = client.post("/api/generate", json=body)
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith(
            "primer high.mid has no notes this model's tokenizer can read"
        )
    assert len(calls) == 1


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
@pytest.mark.parametrize("signature, tempos", [(None, False), ((3, 4), False), ((6, 8), True)])
def test_a_long_primer_s_end_is_tokenized_alone_and_gives_the_whole_s(
    name, signature, tempos, monkeypatch
) -> None:
    """Every tokenizer: the end cut at a bar line gives the last tokens of the whole piece."""
    tokenizer = get_tokenizer(name)
    [(_, piece)], _ = score_pieces(
        long_score(60, signature, tempos), options_like({}, tokenizer.timed)
    )
    whole = tokenizer.encode(piece)
    checkpoint = SimpleNamespace(
        tokenizer=lambda: tokenizer, vocabulary=sorted(set(whole)), corpus_config={}
    )
    cut: list[bool] = []
    real = primers._end_tokens

    def spied(*args):
        tokens = real(*args)
        cut.append(tokens is not None)
        return tokens

    monkeypatch.setattr(primers, "_end_tokens", spied)
    end = primers.primer_end(long_score(60, signature, tempos), checkpoint, 200)
    assert cut == [True]  # the whole piece was not tokenized
    assert list(end.tokens) == whole[-200:] and end.readable
