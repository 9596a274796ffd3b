"""The web page's default sampling: GET /api/models lists each model's temperature and top-p
(the listening test's recorded choice, else the defaults), a request without them samples at
the model's choice, and a piece's settings list the values it was generated with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from lstm_music.generation.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P  # noqa: E402
from lstm_music.model.checkpoint import Checkpoint, write_safetensors  # noqa: E402
from lstm_music.model.lstm import LSTMModel, ModelConfig  # noqa: E402
from lstm_music.tokens import get_tokenizer  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402

CHOSEN = {"temperature": 0.6, "top_p": 0.85, "chosen_by": "listening test on the valid split"}


def tiny(path: Path, sampling: dict | None = None, raw: object = None) -> Path:
    """A random tiny REMI model at `path`, with `sampling` recorded as `Checkpoint.save` writes
    it; `raw`: that metadata entry replaced by a hostile one, as a crafted file could."""
    tokenizer = get_tokenizer("remi")
    words = ["<pad>", "<bos>", "<eos>", *tokenizer.base_vocabulary()]
    torch.manual_seed(0)
    model = LSTMModel(ModelConfig(len(words), 8, [16], 0.0)).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    Checkpoint(model, tokenizer.to_config(), words, sampling=sampling or {}).save(path)
    if raw is not None:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as stored:
            meta = json.loads(stored.metadata()["lstm_music"])
        write_safetensors(path, model.state_dict(), {**meta, "sampling": raw})
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    runs = tmp_path_factory.mktemp("sampling-runs")
    tiny(runs / "chosen" / "best.safetensors", CHOSEN)
    tiny(runs / "plain" / "best.safetensors")
    tiny(runs / "crafted" / "best.safetensors", raw={"temperature": 1e9, "top_p": 0.5})
    app = create_app(runs, tmp_path_factory.mktemp("sampling-work"), workers=1)
    with TestClient(app) as test_client:
        yield test_client


def generate(client, model: str, **body) -> dict:
    answer = client.post("/api/generate", json={"model": model, "tokens": 24, "seed": 5, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["pieces"][0]["settings"]


def test_models_list_the_recorded_choice_or_the_defaults(client) -> None:
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert models["chosen"]["sampling"] == CHOSEN
    defaults = {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P, "chosen_by": "default"}
    assert models["plain"]["sampling"] == defaults
    assert models["crafted"]["sampling"] == defaults  # a bad entry is ignored, as loading does
    assert client.get("/api/models/chosen").json()["sampling"] == CHOSEN
    shipped = [m for m in models.values() if m["source"] == "shipped"]
    assert shipped and all(m["sampling"]["temperature"] > 0 for m in shipped)


def test_a_request_without_sampling_uses_the_models_choice(client) -> None:
    settings = generate(client, "chosen")
    assert (settings["temperature"], settings["top_p"]) == (0.6, 0.85)
    settings = generate(client, "plain")
    assert (settings["temperature"], settings["top_p"]) == (DEFAULT_TEMPERATURE, DEFAULT_TOP_P)


def test_given_sampling_wins_and_each_value_is_resolved_alone(client) -> None:
    settings = generate(client, "chosen", temperature=1.3, top_p=0.5)
    assert (settings["temperature"], settings["top_p"]) == (1.3, 0.5)
    settings = generate(client, "chosen", temperature=1.3)
    assert (settings["temperature"], settings["top_p"]) == (1.3, 0.85)
    settings = generate(client, "plain", top_p=0.7)
    assert (settings["temperature"], settings["top_p"]) == (DEFAULT_TEMPERATURE, 0.7)


def test_the_recorded_choice_is_what_is_sampled_with(client) -> None:
    """Leaving the values out and giving the model's own choice write the same notes."""
    chosen = client.post("/api/generate", json={"model": "chosen", "tokens": 60, "seed": 9})
    given = client.post("/api/generate", json={"model": "chosen", "tokens": 60, "seed": 9,
                                               "temperature": 0.6, "top_p": 0.85})  # fmt: skip
    midi = [client.get(a.json()["pieces"][0]["midi_url"]).content for a in (chosen, given)]
    assert midi[0] == midi[1]


def test_a_streamed_piece_lists_the_models_choice(client) -> None:
    body = {"model": "chosen", "seconds": 2, "seed": 5, "top_p": 0.9}
    with client.stream("POST", "/api/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        text = response.read().decode()
    ends = [block for block in text.split("\n\n") if block.startswith("event: end\n")]
    assert len(ends) == 1, text[-500:]
    settings = json.loads(ends[0].split("\ndata: ", 1)[1])["piece"]["settings"]
    assert (settings["temperature"], settings["top_p"]) == (0.6, 0.9)
