"""The JSON API's request and response shapes, with the ranges a request must respect.

Ranges are deliberately tight (at most 8 pieces of 2 minutes per request): one request must not
be able to keep the server's few workers busy for long or fill its disk. Requests are strict
(`StrictRequest`): a number is a JSON number, a flag a JSON boolean, never a string ("60",
"true"), as a typed API is expected to be; the lower bounds are `SamplingOptions`'s (BOUNDS).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lstm_music.generation.primers import PLAYED_TEMPO
from lstm_music.generation.sampling import (
    BOUNDS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    MAX_GUIDANCE,
    PRIMER_TOKENS,
    SamplingOptions,
)

MAX_NUM = 8
MAX_SECONDS = 120.0
MAX_TOKENS = 4096
MAX_PRIMER_TOKENS = 1000
MAX_SEED = 2**32 - 1
MAX_INSTRUMENTS = 32  # names or programs in one request's instrument set
MAX_PHRASE_NOTES = 2000  # notes of a played phrase (POST /api/stream)
MAX_PHRASE_SECONDS = 600.0  # latest start of a phrase's note
MAX_NOTE_SECONDS = 30.0  # longest played note
MIN_TEMPO, MAX_TEMPO = 20.0, 300.0  # quarter notes a minute
MAX_CONVERSATION_NOTES = 20_000  # notes of a conversation's MIDI file
MAX_CONVERSATION_SECONDS = 3600.0  # latest start, and longest note, of a conversation
ShortText = Annotated[str, Field(max_length=40)]  # a key, range, instrument or control as text
DEFAULT_SECONDS = 20.0  # when neither seconds nor tokens is given, for a timed tokenizer


class StrictRequest(BaseModel):
    """A request body: unknown fields refused, and no string taken for a number or a flag."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorMessage(BaseModel):
    """Every error answer: one sentence for a person, shown as is on the page."""

    detail: str


class DefaultSampling(BaseModel):
    """What a model samples at when a request leaves temperature and top-p out."""

    temperature: float
    top_p: float
    chosen_by: str = Field(
        description='"default": the library\'s defaults; else who chose them for this model '
        '(the listening test: "listening test on the valid split")'
    )


class ModelSummary(BaseModel):
    """A model the server can generate with: shipped in the package, or found under --runs."""

    id: str = Field(description="the name to pass as `model` to POST /api/generate")
    label: str = Field(description="a name for people: the shipped name or the run's folder")
    source: Literal["shipped", "run"]
    default: bool = False
    tokenizer: str | None = None
    timed: bool = Field(False, description="true when `seconds` can set the length")
    controls: list[str] = Field(
        default_factory=list,
        description="the controls it was trained with (density, polyphony, key): the only "
        "ones a request to it may give",
    )
    instruments: bool = Field(
        False, description="true when its pieces have instruments (`instruments` then applies)"
    )
    parameters: int = 0
    valid_loss: float | None = Field(
        None, description="NLL per token (nats), valid split: the card's, else training's best"
    )
    test_loss: float | None = Field(None, description="NLL per token (nats) on the test split")
    sampling: DefaultSampling | None = Field(
        None, description="its temperature and top-p when a request gives none"
    )
    summary: str = ""


class ModelDetails(ModelSummary):
    """A model's card (shipped models) or its training settings and metrics (runs)."""

    card_html: str | None = Field(None, description="the model card as escaped, simple HTML")
    settings: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    loss_curve_url: str | None = None
    report_url: str | None = Field(
        None, description="a run's held-out report (runs whose folder names their corpus)"
    )


class RunReport(BaseModel):
    """How good a run's model is on its corpus's held-out pieces (`evaluation.report`)."""

    split: str | None = Field(description="the held-out split scored; null: the corpus has none")
    pieces: int
    tokens: int
    notes: int
    vocabulary: int
    predictors: list[dict[str, Any]] = Field(
        description="name, label, nll_per_token (nats), bits_per_note: the model first, then "
        "the base model (if any), a unigram model of the train split, a uniform guess"
    )
    gap: dict[str, Any] | None = Field(description="loss on training pieces against held-out")
    copies: dict[str, Any] | None = Field(description="sampled pieces checked for copies")
    listening: dict[str, Any] | None = Field(
        None,
        description="the listening test: accuracy (balanced; 0.5 is chance), low and high (its "
        "95% interval), the excerpt and piece counts on each side, words (plain words), "
        "summary (one line), refused (why it did not run; the figures are then null); null: "
        "not run",
    )
    warnings: list[str]
    remarks: list[str]
    verdict: str = Field(description="one line for people")
    saving_vs_unigram: float | None = None
    saving_vs_base: float | None = None
    fine_tuned: bool = Field(
        default=False, description="the base model is the one this model was fine-tuned from"
    )
    origin: Literal["training", "server"] = Field(
        "server",
        description="training: the run's report.json, which `train` wrote; server: "
        "computed here, since that file is missing or older than the checkpoint or corpus",
    )
    written: str | None = Field(None, description="when it was made (ISO 8601, UTC)")


class PrimerInfo(BaseModel):
    """An uploaded MIDI primer, checked and kept under a random id for POST /api/generate."""

    id: str
    filename: str
    notes: int
    seconds: float
    tracks: int


class PieceRequest(StrictRequest):
    """What to generate. Give `seconds` (timed tokenizers) or `tokens`, not both; neither means
    20 seconds, or 512 tokens for a tokenizer without timing. Unknown fields are refused.

    The defaults are `SamplingOptions`'s and the lower bounds the ones it checks; the upper
    bounds are the server's own (one request must stay small)."""

    model: str = Field(max_length=200, description="a model id from GET /api/models")
    temperature: float | None = Field(
        SamplingOptions.temperature, ge=BOUNDS["temperature"].low, le=5,
        description="above 1: wilder; below: safer; none: the model's choice (GET /api/models "
        f"lists it), else {DEFAULT_TEMPERATURE:g}",
    )  # fmt: skip
    top_k: int = Field(
        SamplingOptions.top_k, ge=0, le=1000, description="sample from the k likeliest; 0 = off"
    )
    top_p: float | None = Field(
        SamplingOptions.top_p, gt=0, le=1,
        description=f"nucleus sampling; 1 = off; none: the model's choice, else {DEFAULT_TOP_P:g}",
    )  # fmt: skip
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS)
    tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="none: a new one, reported")
    primer_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="an id from POST /api/primers"
    )
    primer_tokens: int = Field(PRIMER_TOKENS, ge=1, le=MAX_PRIMER_TOKENS)
    # hard constraints, for any model (checked by SamplingOptions: a bad value is a 422)
    key: ShortText | None = Field(
        None,
        description="D-minor, Bb-major, F#-dorian: the key control (models "
        "listing `key` in `controls`), or with key_strict a mask for any model",
    )
    key_strict: bool = Field(False, description="no pitch outside the key's scale (drums aside)")
    pitch_range: ShortText | tuple[int, int] | None = Field(
        None, description="lowest and highest pitch: 48..84, C3..C6 or [48, 84]"
    )
    instruments: list[ShortText | int] | None = Field(
        None, min_length=1, max_length=MAX_INSTRUMENTS,
        description="GM families, names or programs (-1 drums): models with `instruments` only",
    )  # fmt: skip
    # soft controls, only for models trained with them (GET /api/models lists their `controls`)
    density: ShortText | int | None = Field(
        None, description="notes per bar: low, medium, high or a number (control `density`)"
    )
    polyphony: ShortText | int | None = Field(
        None, description="notes at once: 3 (at most) or 2..4 (control `polyphony`)"
    )
    guidance: float = Field(
        SamplingOptions.guidance, ge=1, le=MAX_GUIDANCE,
        description="how strongly the controls steer: 1 as trained, more pushes harder",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_length(self) -> PieceRequest:
        if self.seconds is not None and self.tokens is not None:
            raise ValueError("give seconds or tokens, not both")
        return self


class GenerateRequest(PieceRequest):
    """What POST /api/generate writes: `num` pieces of the same settings."""

    num: int = Field(SamplingOptions.num, ge=1, le=MAX_NUM, description="pieces to write")


class PhraseNote(StrictRequest):
    """A note as played, in seconds from the start of the recording."""

    pitch: int = Field(ge=0, le=127)
    start: float = Field(ge=0, le=MAX_PHRASE_SECONDS, allow_inf_nan=False)
    duration: float = Field(gt=0, le=MAX_NOTE_SECONDS, allow_inf_nan=False)
    velocity: int = Field(ge=1, le=127)


class StreamRequest(PieceRequest):
    """One piece to stream (POST /api/stream): the fields of POST /api/generate but `num`, and a
    played `phrase` as the primer (instead of `primer_id`)."""

    phrase: list[PhraseNote] | None = Field(
        None,
        min_length=1,
        max_length=MAX_PHRASE_NOTES,
        description="notes played for the model to answer: the primer (like an uploaded file's, "
        "its last `primer_tokens` tokens), so not with `primer_id`",
    )
    tempo: float | None = Field(
        None,
        ge=MIN_TEMPO,
        le=MAX_TEMPO,
        allow_inf_nan=False,
        description="quarter notes a minute of the phrase and of the answer (with a phrase: "
        f"{PLAYED_TEMPO:g} when not given; without: the model's own when not given)",
    )

    @model_validator(mode="after")
    def _one_primer(self) -> StreamRequest:
        if self.phrase is not None and self.primer_id is not None:
            raise ValueError("give a phrase or a primer_id, not both")
        return self


class ConversationNote(PhraseNote):
    """A note of a conversation: the user's or the model's, in seconds on one timeline."""

    start: float = Field(ge=0, le=MAX_CONVERSATION_SECONDS, allow_inf_nan=False)
    duration: float = Field(gt=0, le=MAX_CONVERSATION_SECONDS, allow_inf_nan=False)
    program: int = Field(0, ge=-1, le=127, description="General MIDI program, -1 for drums")


class ConversationRequest(StrictRequest):
    """The notes of a conversation (phrases and answers), to be written as one MIDI file."""

    notes: list[ConversationNote] = Field(min_length=1, max_length=MAX_CONVERSATION_NOTES)
    tempo: float | None = Field(
        None, ge=MIN_TEMPO, le=MAX_TEMPO, allow_inf_nan=False,
        description=f"quarter notes a minute (where the bars fall); {PLAYED_TEMPO:g} if not given",
    )  # fmt: skip


class PieceInfo(BaseModel):
    """One generated piece and where to fetch it."""

    id: str
    number: int = Field(description="1, 2, ... in the order this server wrote them")
    title: str
    model: str
    created: str = Field(description="ISO 8601 time, UTC")
    seed: int
    settings: dict[str, Any]
    primer: str | None = None
    notes: int
    seconds: float
    engine: str = Field(description="the synthesizer that rendered the audio")
    warning: str | None = None
    instruments: list[str] = Field(
        default_factory=list, description="the instruments of the piece's MIDI tracks"
    )
    midi_url: str
    wav_url: str
    png_url: str


class GenerateResponse(BaseModel):
    pieces: list[PieceInfo]
    seed: int
    elapsed: float = Field(description="seconds the server spent, queueing included")


class ServerStatus(BaseModel):
    """Limits and load, so a client can size its requests and its retries."""

    workers: int
    max_queue: int
    busy: int = Field(description="requests generating or waiting now")
    pieces: int
    max_upload_bytes: int
    limits: dict[str, int | float]
