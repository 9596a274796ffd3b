"""The JSON API under /api. Clients name things only by ids the server gave out: a model id from
the catalog, a primer or piece id (32 hex digits) from a store; no request value ever becomes a
file path. Slow work (generation, file reads, drawing) runs in threads, never on the event loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from lstm_music.generation.sampling import SamplingOptions
from lstm_music.web import schemas
from lstm_music.web.catalog import ModelEntry, loss_curve_source
from lstm_music.web.jobs import CONSTRAINTS, FILES, ID_PATTERN, JobSpec, Primer, StoredPiece, new_id
from lstm_music.web.state import WebState

router = APIRouter(prefix="/api")
PieceId = Annotated[str, PathParameter(pattern=ID_PATTERN, description="32 hex digits")]
ERRORS = {code: {"model": schemas.ErrorMessage} for code in (404, 422)}


def get_state(request: Request) -> WebState:
    return request.app.state.web


ServerState = Annotated[WebState, Depends(get_state)]  # a route's argument


def client_address(request: Request) -> str:
    """Who holds a queue slot (the client's address), for the queue's per-client bound."""
    return request.client.host if request.client else ""


def _model(state: WebState, model_id: str) -> ModelEntry:
    entry = state.catalog.get(model_id)
    if entry is None:
        raise HTTPException(
            404, f"unknown model {model_id[:100]!r}: GET /api/models lists the models"
        )
    return entry


def _piece(state: WebState, piece_id: str) -> StoredPiece:
    piece = state.pieces.get(piece_id)
    if piece is None:
        raise HTTPException(404, "no such piece (pieces last as long as the server, up to its "
                                 "history limit)")  # fmt: skip
    return piece


@router.get("/status", summary="Limits and load", response_model=schemas.ServerStatus)
def status(state: ServerState) -> dict:
    limits = {"num": schemas.MAX_NUM, "seconds": schemas.MAX_SECONDS,
              "tokens": schemas.MAX_TOKENS, "primer_tokens": schemas.MAX_PRIMER_TOKENS}  # fmt: skip
    return {
        "workers": state.queue.workers,
        "max_queue": state.queue.max_queue,
        "busy": state.queue.busy,
        "pieces": len(state.pieces),
        "max_upload_bytes": state.max_upload_bytes,
        "limits": limits,
    }


@router.get("/models", summary="List the models", response_model=list[schemas.ModelSummary])
def list_models(state: ServerState) -> list[dict]:
    """Every checkpoint found under --runs, then the shipped models (the default first)."""
    catalog = state.catalog
    return [catalog.summary(entry) for entry in catalog.refresh()]


@router.get(
    "/models/{model_id}",
    summary="A model's card or training metrics",
    response_model=schemas.ModelDetails,
    responses=ERRORS,
)
def model_details(state: ServerState, model_id: str) -> dict:
    return state.catalog.details(_model(state, model_id))


@router.get(
    "/models/{model_id}/loss.png",
    summary="A run's loss curve",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"image/png": {}}}},
)
def loss_curve(state: ServerState, model_id: str) -> FileResponse:
    """The run's loss.png, or one drawn from its metrics.csv."""
    entry = _model(state, model_id)
    source = loss_curve_source(entry)
    if source is None:
        raise HTTPException(404, f"model {model_id!r} has no training metrics")
    if source.suffix == ".csv":
        from lstm_music.render.plots import plot_losses

        # entry.id is the catalog's slug ([A-Za-z0-9._-]), safe as a file name
        drawn = state.root / "plots" / f"{entry.id}-{source.stat().st_mtime_ns}.png"
        drawn.parent.mkdir(parents=True, exist_ok=True)
        with state.generator.draw_lock:
            if not drawn.is_file():
                try:
                    plot_losses(source, drawn, title=f"{entry.label}: training loss")
                except (ValueError, KeyError, OSError) as error:  # e.g. a half-written row
                    raise HTTPException(404, "this run's metrics cannot be drawn yet") from error
        source = drawn
    return FileResponse(source, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get(
    "/models/{model_id}/report",
    summary="A run's held-out report",
    response_model=schemas.RunReport,
    responses={**ERRORS, 429: {"model": schemas.ErrorMessage, "description": "busy: retry"}},
)
async def run_report(state: ServerState, http: Request, model_id: str) -> dict:
    """Bits per note on the held-out pieces of the corpus the run was trained on, beside a
    uniform guess, a unigram model and the base model; the training/held-out loss gap; a copy
    check of a few sampled pieces; warnings and a verdict. Computed once (seconds), then kept;
    it takes a generation slot while it is computed."""
    entry = _model(state, model_id)
    if entry.run_dir is None:
        raise HTTPException(404, f"model {model_id!r} is shipped: its card has its figures")
    cache, client = state.generator.cache, client_address(http)
    return await state.queue.run(state.reports.get, entry, cache, client=client)


def _check_primer(state: WebState, data: bytes, filename: str) -> Primer:
    from lstm_music.tokens.midi import (
        MidiError,
        SkipFile,
        TrackOptions,
        duration_seconds,
        note_count,
        read_score,
        score_pieces,
    )

    if not data:
        raise HTTPException(400, f"{filename}: the file is empty")
    if len(data) > state.max_upload_bytes:
        raise HTTPException(413, f"{filename}: too big, at most "
                                 f"{state.max_upload_bytes / 1e6:g} MB")  # fmt: skip
    try:
        score = read_score(data)
    except MidiError as error:
        raise HTTPException(400, f"{filename}: {error}") from error
    if note_count(score) == 0:
        raise HTTPException(400, f"{filename}: a MIDI file without notes cannot start a piece")
    tracks = sum(1 for track in score.tracks if len(track.notes))
    try:  # the notes and seconds shown are those generation reads: trimmed, silences capped
        [(_, piece)], _ = score_pieces(score, TrackOptions(drums=True))  # a model may want drums
    except SkipFile as error:  # only zero-length notes, or too many
        raise HTTPException(400, f"{filename}: cannot start a piece: {error}") from error
    primer_id = new_id()
    folder = state.root / "primers" / primer_id
    primer = Primer(primer_id, filename, folder, note_count(piece),
                    round(duration_seconds(piece), 2), tracks)  # fmt: skip
    folder.mkdir(parents=True)
    primer.path.write_bytes(data)
    state.primers.add(primer_id, primer)
    return primer


@router.post(
    "/primers",
    summary="Upload a MIDI primer",
    response_model=schemas.PrimerInfo,
    responses={code: {"model": schemas.ErrorMessage} for code in (400, 413)},
)
async def upload_primer(state: ServerState, file: Annotated[UploadFile, File()]) -> dict:
    """A MIDI file for generation to continue; pass the returned id as `primer_id`. It must
    parse and hold notes; the size limit is in GET /api/status."""
    filename = Path(file.filename or "primer.mid").name[:100] or "primer.mid"
    data = await file.read(state.max_upload_bytes + 1)
    primer = await run_in_threadpool(_check_primer, state, data, filename)
    return primer.describe()


def _constraints(request: schemas.PieceRequest, summary: dict) -> dict:
    """The request's constraints and controls for SamplingOptions (which checks them: a bad
    value is a SettingError, answered 422 in one line). A control the model was not trained
    with, or instruments for a model without, is refused here, before the job is queued."""
    from lstm_music.generation.controls import asked_controls, refuse_unknown

    given = {name: getattr(request, name) for name in CONSTRAINTS}
    if given["instruments"] is not None:
        if not summary["instruments"]:
            raise HTTPException(422, f"model {summary['id']!r} writes no instruments (its tokens "
                                     "name none): leave instruments out")  # fmt: skip
        given["instruments"] = tuple(given["instruments"])
    given["guidance"] = request.guidance  # pushes the controls asked (none: no effect)
    probe = SamplingOptions(**given)  # the values checked before the model's abilities
    refuse_unknown(asked_controls(probe, tuple(summary["controls"])), tuple(summary["controls"]))
    return given


def job_spec(state: WebState, request: schemas.PieceRequest, **sampling: Any) -> JobSpec:
    """The request checked against the model and the stores; `sampling`: more SamplingOptions
    fields (POST /api/generate's `num`, POST /api/stream's `tempo`)."""
    entry = _model(state, request.model)
    summary = state.catalog.summary(entry)
    if request.seconds is not None and not summary["timed"]:
        raise HTTPException(422, f"model {entry.id!r} uses {summary['tokenizer']!r} tokens, "
                                 "which have no timing: give tokens, not seconds")  # fmt: skip
    primer = None
    if request.primer_id is not None:
        primer = state.primers.get(request.primer_id)
        if primer is None:
            raise HTTPException(404, "unknown primer: upload it again (POST /api/primers)")
    seconds, tokens = request.seconds, request.tokens
    if seconds is None and tokens is None and summary["timed"]:
        seconds = schemas.DEFAULT_SECONDS
    options = SamplingOptions(
        tokens=tokens or SamplingOptions.tokens,
        seconds=seconds,
        temperature=request.temperature,
        top_k=request.top_k,
        top_p=request.top_p,
        seed=request.seed,
        **sampling,
        **_constraints(request, summary),
    )
    return JobSpec(entry.id, entry.path, options, primer, request.primer_tokens)


@router.post(
    "/generate",
    summary="Generate pieces",
    response_model=schemas.GenerateResponse,
    responses={**ERRORS, 429: {"model": schemas.ErrorMessage, "description": "busy: retry"}},
)
async def generate(state: ServerState, http: Request, request: schemas.GenerateRequest) -> dict:
    """Sample `num` pieces and render each to MIDI, WAV and a piano roll. Waits for a worker
    when all are busy; when the queue is full too, answers 429 with a Retry-After header."""
    started = time.perf_counter()
    spec = await run_in_threadpool(job_spec, state, request, num=request.num)
    seed, pieces = await state.queue.run(state.generator.run, spec, client=client_address(http))
    return {
        "pieces": [piece.describe() for piece in pieces],
        "seed": seed,
        "elapsed": round(time.perf_counter() - started, 3),
    }


@router.get("/pieces", summary="This server's pieces, newest first",
            response_model=list[schemas.PieceInfo])  # fmt: skip
def list_pieces(state: ServerState) -> list[dict]:
    return [piece.describe() for piece in state.pieces.newest_first()]


@router.get("/pieces/{piece_id}", summary="One piece", response_model=schemas.PieceInfo,
            responses=ERRORS)  # fmt: skip
def piece_info(state: ServerState, piece_id: PieceId) -> dict:
    return _piece(state, piece_id).describe()


@router.get(
    "/pieces/{piece_id}/{kind}",
    summary="A piece's MIDI, WAV or piano roll",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {FILES[k][1]: {} for k in FILES}}},
)
def piece_file(state: ServerState, piece_id: PieceId, kind: Literal["midi", "wav", "png"]):
    piece = _piece(state, piece_id)
    if not piece.file(kind).is_file():  # deleted past the history limit just now
        raise HTTPException(404, "this piece was deleted (the history limit was reached)")
    return FileResponse(
        piece.file(kind),
        media_type=FILES[kind][1],
        filename=piece.download_name(kind),
        content_disposition_type="inline",
    )
