"""The live API: a piece streamed as the model writes it, and a conversation saved as MIDI.

POST /api/stream holds one slot of the server's bounded `JobQueue` for its whole life, so the
queue's cap and its 429 answers hold for streams as for POST /api/generate. The piece is written
by `generation.stream.PieceStream` in a worker thread; its events reach the response through a
bounded `EventChannel`, so a worker ahead of a slow client waits rather than piling up memory.
When the client goes (or takes nothing for `STALL_SECONDS`), the channel closes, the generator
sees it within a few dozen tokens and the slot is free again; a piece stopped that way is never
stored. The stall allowed is a quarter of the piece's length, 5 to 30 s (`stall_seconds`): a
client of a short piece that reads nothing lets its slot go in seconds. A client address holds
at most the queue's `per_client` slots. Refusals found once the model is loaded (a primer it
cannot read, a control it lacks) still come before the response, as normal HTTP errors. The
response waits on the job as well as on its events: a job that ends without its last event (it
stalled, failed, or was dropped at shutdown) ends the stream with an `error` event, never leaves
it open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from lstm_music.generation.primers import PLAYED_TEMPO, PlayedNote, played_score
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.web import schemas
from lstm_music.web.jobs import Generator, JobSpec, error_text
from lstm_music.web.routes import ServerState, client_address, job_spec
from lstm_music.web.state import WebState

router = APIRouter(prefix="/api")
EVENTS_WAITING = 64  # events a worker may be ahead of its client
POLL_SECONDS = 0.25  # how often a waiting side looks whether the other has gone
STALL_SECONDS = 30.0  # a client that takes no event for this long is treated as gone...
MIN_STALL_SECONDS = 5.0  # ...or for a quarter of its piece's length, when that is shorter
STALL_FRACTION = 0.25
TOKENS_PER_SECOND = 8.0  # a piece's length given in tokens, in seconds, roughly (REMI: 2 notes/s)
REFUSED = "refused"  # the channel's first item when the job failed before its start event
STOPPED = "stopped"  # what `EventChannel.get` gives once the job is over and its events taken
LAST_EVENTS = ("end", "error")
STREAM_DESCRIPTION = f"""\
Write one piece and send its notes as they are written, for a page to play them at once.
The body is POST /api/generate's without `num`, with two more fields: `phrase`, notes played
for the model to answer (at most {schemas.MAX_PHRASE_NOTES}; not with `primer_id`), and `tempo`,
the phrase's and the answer's. A phrase is the primer, read as an uploaded file would be: its
leading silence cut (the piece's timeline starts at its first note), its timing on the model's
grid, its last `primer_tokens` tokens kept; with bar lines in the model's tokens (REMI) the
answer starts at the next one. `seconds` is the whole piece's length, primer included, as for
POST /api/generate. Bad parameters (422), an unknown model (404), a full queue (429, with
Retry-After) and a server stopping (503) are answered before streaming, as normal JSON errors.

The answer is `text/event-stream`; each event is `event: NAME` and `data: JSON`, then a blank
line:

- `start`: `{{"model": id, "seed": int, "tempo": bpm, "primer_seconds": float, "instruments":
  [names]}}`: `primer_seconds` is where the primer ends on the piece's timeline (0 without one),
  `instruments` the ones asked (empty: the model's choice).
- `notes`, several: `{{"notes": [{{"pitch", "start", "duration", "velocity", "program",
  "instrument"}}], "written_seconds": float}}`: notes that will not change, in start order,
  times in seconds on the piece's timeline (the primer's notes are not sent; program -1 is
  drums); no later note starts before `written_seconds`.
- `end`: `{{"piece": ...}}`, the piece as GET /api/pieces/{{id}} shows it: it is in the history,
  with its MIDI, WAV and piano roll.
- `error`: `{{"detail": one line}}`; the stream then closes (also when it stopped early: its
  client took no event for a quarter of the piece's length, {MIN_STALL_SECONDS:g} to
  {STALL_SECONDS:g} s, or the server is stopping).

Closing the connection stops the generation; the piece is then not kept.
"""


class EventChannel:
    """Events from a worker thread to the event loop, at most EVENTS_WAITING of them queued.

    `put` (the worker) waits while the queue is full and gives up once the channel is closed
    (the client left) or after `stall` seconds without room (`stalled`); `get` (the response)
    awaits the next, or the job's end.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, stall: float | None = None) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(EVENTS_WAITING)
        self._closed = threading.Event()
        self.stall = STALL_SECONDS if stall is None else stall
        self.stalled = False  # the worker gave up: its client took no event for `stall` s

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()

    def put(self, name: str, data: Any) -> bool:
        """Queue an event; False (and the channel closed) when nobody will read it."""
        if self.closed:
            return False
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put((name, data)), self._loop)
        except RuntimeError:  # the event loop is gone: the server is stopping
            self.close()
            return False
        waited = 0.0
        while True:
            try:
                future.result(timeout=POLL_SECONDS)
                return True
            except concurrent.futures.TimeoutError:
                waited += POLL_SECONDS
                if self.closed:
                    break
                if waited >= self.stall:
                    self.stalled = True
                    break
            except concurrent.futures.CancelledError:
                break
        future.cancel()
        self.close()
        return False

    async def get(
        self, job: asyncio.Future[Any], timeout: float | None = None
    ) -> tuple[str, Any] | None:
        """The next event; (STOPPED, why) once `job` is over and every event it sent is taken
        (it ended without its last one); None when `timeout` seconds pass first."""
        while self._queue.empty():
            if job.done():
                return STOPPED, _stop_reason(job, self.stalled and self.stall)
            getter = asyncio.ensure_future(self._queue.get())
            try:
                first = asyncio.FIRST_COMPLETED
                await asyncio.wait({getter, job}, timeout=timeout, return_when=first)
                if getter.done():
                    return getter.result()
            finally:
                getter.cancel()  # not done: a cancelled get leaves its item in the queue
            if not job.done() and self._queue.empty():
                return None
        return self._queue.get_nowait()


def stall_seconds(sampling: SamplingOptions) -> float:
    """How long a stream's notes may wait for its client: a quarter of the piece (its seconds,
    or its tokens at TOKENS_PER_SECOND), MIN_STALL_SECONDS to STALL_SECONDS. A client that
    reads nothing then holds its slot for seconds, not the longest piece's half minute."""
    length = sampling.seconds or sampling.tokens / TOKENS_PER_SECOND
    return min(STALL_SECONDS, max(MIN_STALL_SECONDS, STALL_FRACTION * length))


def _stop_reason(job: asyncio.Future[Any], stalled: float) -> str:
    """Why a job ended without its last event (`stalled`: the stall it waited, else 0)."""
    if job.cancelled():
        return "the server is stopping"
    if job.exception() is not None:
        return error_text(job.exception())
    if stalled:
        return f"its notes waited more than {stalled:g} s for the client"
    return "the generator ended before the piece did"


def _stream_spec(state: WebState, request: schemas.StreamRequest) -> JobSpec:
    """The job of a stream: POST /api/generate's checks, one piece, the phrase and tempo."""
    tempo = request.tempo
    if tempo is None and request.phrase:
        tempo = PLAYED_TEMPO  # the answer keeps the phrase's tempo
    spec = job_spec(state, request, tempo=tempo)
    if not request.phrase:
        return spec
    notes = tuple(PlayedNote(n.pitch, n.start, n.duration, n.velocity) for n in request.phrase)
    return replace(spec, phrase=notes)


def _asked_instruments(spec: JobSpec) -> list[str]:
    from lstm_music.tokens.instruments import instrument_name

    asked = spec.sampling.instruments or ()
    return [instrument_name(int(item)) if isinstance(item, int) else str(item) for item in asked]


def _notes_event(batch) -> dict[str, Any]:
    from lstm_music.tokens.instruments import instrument_name

    notes = [vars(note) | {"instrument": instrument_name(note.program)} for note in batch.notes]
    return {"notes": notes, "written_seconds": round(batch.written_seconds, 4)}


def _stream_work(generator: Generator, spec: JobSpec, channel: EventChannel) -> None:
    """A queue worker's part: `start` (or the refusal, before the response), notes, `end`."""
    from lstm_music.generation.stream import PieceStream

    if channel.closed:  # the client left while the job waited for a worker
        return
    try:
        checkpoint = generator.cache.get(spec.model_path)
        options = generator.sampling(spec, checkpoint)
        stream = PieceStream(checkpoint, options, lambda: channel.closed)
        start = {"model": spec.model, "seed": options.seed, "tempo": round(stream.tempo, 3),
                 "primer_seconds": round(stream.primer_seconds, 4),
                 "instruments": _asked_instruments(spec)}  # fmt: skip
    except Exception as error:  # the request's answer says what it was
        channel.put(REFUSED, error)
        return
    if not channel.put("start", start):
        return
    try:
        for batch in stream:
            if not channel.put("notes", _notes_event(batch)):
                return
        if stream.piece is None or channel.closed:  # stopped, or nobody waits for the files
            return
        stored = generator.keep(spec, options, stream.piece)
        if not channel.put("end", {"piece": stored.describe()}):
            generator.pieces.remove(stored.id)  # the client left during the render
    except Exception as error:  # the client is told; the server goes on
        channel.put("error", {"detail": error_text(error)})


async def _first_event(
    channel: EventChannel, job: asyncio.Future[Any], request: Request
) -> tuple[str, Any] | None:
    """The worker's first event (STOPPED when the job ended without one), or None when the
    client leaves first (while the job waits for a worker, or the model loads)."""
    while True:
        event = await channel.get(job, timeout=POLL_SECONDS)
        if event is not None:
            return event
        if await request.is_disconnected():
            return None


async def _events(
    channel: EventChannel, job: asyncio.Future[Any], first: tuple[str, Any]
) -> AsyncIterator[str]:
    """The response body, up to its last event; when it ends, early or not, the channel closes
    (the worker stops). A job over without its last event ends it with an `error`."""
    name, data = first
    try:
        while True:
            yield f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
            if name in LAST_EVENTS:
                return
            name, data = await channel.get(job) or (STOPPED, "no event")  # None: timeouts only
            if name == STOPPED:
                name, data = "error", {"detail": f"the stream stopped: {data}"}
    finally:
        channel.close()


class EventStream(StreamingResponse):
    """The events as `text/event-stream`; the channel closes however the response ends
    (finished, the client gone while a chunk is being sent or before the first, cancelled),
    so the worker never writes on for nobody."""

    def __init__(self, channel: EventChannel, job: asyncio.Future[Any], first: tuple[str, Any]):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(_events(channel, job, first), media_type="text/event-stream",
                         headers=headers)  # fmt: skip
        self.channel = channel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.channel.close()


@router.post(
    "/stream",
    summary="Stream one piece as it is written (server-sent events)",
    description=STREAM_DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "events: see above"},
        **{code: {"model": schemas.ErrorMessage} for code in (404, 422)},
        429: {"model": schemas.ErrorMessage, "description": "busy: retry"},
        503: {"model": schemas.ErrorMessage, "description": "the server is stopping"},
    },
)
async def stream(state: ServerState, request: Request, body: schemas.StreamRequest) -> Response:
    spec = await run_in_threadpool(_stream_spec, state, body)
    channel = EventChannel(asyncio.get_running_loop(), stall_seconds(spec.sampling))
    client = client_address(request)
    job = state.queue.submit(_stream_work, state.generator, spec, channel, timed=False,
                             client=client)  # fmt: skip
    over = asyncio.wrap_future(job)
    over.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen: no warning
    try:
        first = await _first_event(channel, over, request)
    except BaseException:  # cancelled: the server is stopping
        channel.close()
        job.cancel()  # a job still waiting for a worker is dropped (and its slot freed)
        raise
    if first is None or first[0] in (REFUSED, STOPPED):
        channel.close()
        job.cancel()
        if first is None:
            return Response(status_code=204)  # nobody is listening any more
        if first[0] == STOPPED:
            raise HTTPException(503, f"the stream stopped: {first[1]}")
        raise first[1]  # answered by the app's handlers, as POST /api/generate's errors are
    return EventStream(channel, over, first)


@router.post(
    "/conversation",
    summary="A conversation's notes as one MIDI file",
    response_class=Response,
    responses={
        200: {"content": {"audio/midi": {}}, "description": "conversation.mid"},
        422: {"model": schemas.ErrorMessage},
    },
)
async def conversation(body: schemas.ConversationRequest) -> Response:
    """The phrases played and the model's answers, times in seconds on one timeline, as a MIDI
    file: one track per program (-1: drums, on channel 10), at `tempo` (where the bars fall;
    the file plays the notes at their seconds whatever it is). At most 20,000 notes, none
    starting after an hour nor longer than one."""
    data = await run_in_threadpool(_conversation_midi, body)
    disposition = 'attachment; filename="conversation.mid"'
    return Response(data, media_type="audio/midi", headers={"Content-Disposition": disposition})


def _conversation_midi(body: schemas.ConversationRequest) -> bytes:
    from lstm_music.tokens.instruments import fit_channels

    notes = [PlayedNote(n.pitch, n.start, n.duration, n.velocity, n.program) for n in body.notes]
    score = played_score(notes, body.tempo or PLAYED_TEMPO)
    fit_channels(score)  # more than 15 melodic programs share channels by family
    return score.dumps_midi()
