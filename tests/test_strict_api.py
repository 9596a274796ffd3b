"""The JSON API is strict about types, across every request model: a number must be a JSON
number and a flag a JSON boolean; "60" or "true" is refused with a 422 naming the field."""

from __future__ import annotations

import json
import typing

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402

from lstm_music.web import schemas  # noqa: E402
from lstm_music.web.app import create_app  # noqa: E402

NOTE = {"pitch": 60, "start": 0.0, "duration": 0.5, "velocity": 80}
VALID = {  # the least valid body of each request model
    schemas.PieceRequest: {"model": "bach-chorales"},
    schemas.GenerateRequest: {"model": "bach-chorales"},
    schemas.StreamRequest: {"model": "bach-chorales"},
    schemas.PhraseNote: NOTE,
    schemas.ConversationNote: NOTE,
    schemas.ConversationRequest: {"notes": [NOTE]},
}


def request_models() -> list[type[BaseModel]]:
    """Every request model of the API: the subclasses of StrictRequest, all of them."""
    found, todo = [], [schemas.StrictRequest]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def scalar_types(annotation) -> set[type]:
    """int, float, bool, str found in a field's annotation (unions, Optional, Annotated)."""
    args = typing.get_args(annotation)
    if not args:
        return {annotation} if annotation in (int, float, bool, str) else set()
    if typing.get_origin(annotation) in (list, tuple):
        return set()  # a list's items are checked where they are models
    return set().union(*(scalar_types(arg) for arg in args))


def test_every_request_model_has_a_valid_body() -> None:
    assert set(request_models()) == set(VALID)  # a new request model needs its body here
    for model, body in VALID.items():
        model.model_validate(body)


@pytest.mark.parametrize("model", sorted(VALID, key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_numbers_and_flags_as_strings_are_refused(model) -> None:
    tried = 0
    for name, field in model.model_fields.items():
        kinds = scalar_types(field.annotation)
        if str in kinds or not kinds & {int, float, bool}:
            continue  # text fields (a key, "48..84") take strings by design
        value = "true" if bool in kinds else "60"
        with pytest.raises(ValidationError) as error:
            model.model_validate_json(json.dumps({**VALID[model], name: value}))
        assert error.value.errors()[0]["loc"][0] == name
        tried += 1
    assert tried  # every request model has numbers


def test_the_api_answers_422_naming_the_field(tmp_path) -> None:
    with TestClient(create_app(None, tmp_path)) as client:
        answer = client.post("/api/generate", json={"model": "bach-chorales", "top_k": "60"})
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("top_k: Input should be a valid integer")
        answer = client.post("/api/generate", json={"model": "x", "temperature": 0.0001})
        assert answer.status_code == 422 and "temperature" in answer.json()["detail"]
