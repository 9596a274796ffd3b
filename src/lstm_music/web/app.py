"""The FastAPI application: `create_app(...)` builds it, nothing runs on import.

Everything the server owns (temporary folder, worker threads, stores) is made when the app
starts (its lifespan) and removed when it stops, also at interpreter exit should the lifespan
never end. A middleware caps request bodies before they are parsed and adds security headers;
the page's Content-Security-Policy lets it load nothing but this server's own files.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from lstm_music import __version__
from lstm_music.errors import LstmMusicError
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.web.catalog import Catalog
from lstm_music.web.job_queue import JobQueue, QueueFull
from lstm_music.web.jobs import Generator, Store, StoredPiece, error_text
from lstm_music.web.live import router as live_router
from lstm_music.web.routes import router
from lstm_music.web.schemas import MAX_NUM
from lstm_music.web.state import WebState

MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around an uploaded file
# 'wasm-unsafe-eval': the vendored synthesizer decodes its SoundFont's samples in WebAssembly
# (compiling WebAssembly only; JavaScript eval stays forbidden)
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
DOCS_PATHS = ("/docs", "/redoc")  # FastAPI's API pages load their scripts from a CDN
DESCRIPTION = """\
Generate music with lstm-music's LSTM models and listen to it. `GET /api/models` lists the
models; `POST /api/generate` writes pieces (MIDI, WAV audio, piano-roll PNG) fetched from
`/api/pieces/{id}/midi|wav|png`. A MIDI primer is uploaded first (`POST /api/primers`) and
named by its id. When all generation slots are taken the answer is 429 with a Retry-After header.

Live: `POST /api/stream` writes one piece and sends its notes as they are written (server-sent
events: `start`, `notes`..., `end` with the stored piece, or `error`), optionally answering a
played `phrase`; `POST /api/conversation` turns the notes of phrases and answers into one MIDI
file.
"""


MAX_WORKERS = 64  # generation threads: more than a machine's cores only waits
MAX_QUEUE = 4096  # requests admitted at once, each holding a connection
MAX_HISTORY = 100_000  # generated pieces kept for download


def static_folder() -> Path:
    return Path(str(resources.files("lstm_music.web") / "static"))


class GuardMiddleware:
    """Refuses request bodies over `max_body` bytes (declared or streamed) before any parsing,
    and adds security headers (the strict page policy everywhere but the API docs)."""

    def __init__(self, app, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"].startswith(DOCS_PATHS)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not docs:
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            await send(message)

        headers = dict(scope["headers"])
        if scope["method"] not in ("GET", "HEAD") and not same_origin(headers, scope["scheme"]):
            response = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            return await response(scope, receive, send_with_headers)
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            response = JSONResponse({"detail": self._too_big()}, status_code=413)
            return await response(scope, receive, send_with_headers)
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise HTTPException(413, self._too_big())
            return message

        await self.app(scope, limited_receive, send_with_headers)

    def _too_big(self) -> str:
        limit = (self.max_body - MULTIPART_OVERHEAD) / 1e6
        return f"the upload is too big: at most {limit:g} MB"


def same_origin(headers: dict[bytes, bytes], scheme: str = "http") -> bool:
    """False when a browser says another site's page sent this request (its Origin header):
    scheme, host and port must all be this server's, as a browser's same-origin rule has it.

    Another page could otherwise post a form to a local server; requests without an Origin
    (curl, scripts, same-origin GETs) are not from such a page, unless their Sec-Fetch-Site
    header says "cross-site" or "same-site" (another port of this host is another origin,
    as the Origin check has it).
    """
    origin = headers.get(b"origin")
    if origin is None:  # a browser that sends no Origin still says whose page sent it
        site = headers.get(b"sec-fetch-site", b"").strip().lower()
        return site not in (b"cross-site", b"same-site")  # same-site: another port, another origin
    return origin == scheme.encode() + b"://" + headers.get(b"host", b"")


def _validation_message(error: RequestValidationError) -> JSONResponse:
    """422 with one readable line ("top_p: Input should be less than or equal to 1")."""
    problems = []
    for item in error.errors():
        where = list(item.get("loc", ()))
        if item.get("type") == "json_invalid":  # its loc is ("body", offset): no field
            at = f" (at byte {where[-1]})" if len(where) > 1 else ""
            problems.append({"field": "", "message": f"the body is not valid JSON{at}"})
            continue
        if where and where[0] in ("body", "path", "query", "header"):  # where, not which field
            where = where[1:]
        field = ".".join(str(part) for part in where)
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append({"field": field, "message": message})
    text = "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"]
                     for p in problems)  # fmt: skip
    return JSONResponse({"detail": text or "invalid request", "errors": problems}, 422)


def _add_error_handlers(app: FastAPI) -> None:
    async def busy(_: Request, error: QueueFull) -> JSONResponse:
        text = f"{error}: try again in {error.retry_after} s"
        headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse({"detail": text}, status_code=429, headers=headers)

    async def user_error(_: Request, error: LstmMusicError) -> JSONResponse:
        return JSONResponse({"detail": error_text(error)}, status_code=422)

    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_message(error)

    async def crashed(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": error_text(error)}, status_code=500)

    app.add_exception_handler(QueueFull, busy)
    app.add_exception_handler(LstmMusicError, user_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crashed)


WARM_UP_TOKENS = 64  # a few bars: enough to pay every first-call cost once


def warm_up(state: WebState) -> None:
    """Scan the models, load the first one (the page's default) and write a few bars with it
    (nothing kept) before anyone asks, so the first press of Generate or Play live waits for
    none of it: the model's loading, MidiTok's import (a third of a second, on the first
    tokenizer built) and the first decode. Best effort, in a daemon thread: a model that fails
    to load is reported when a request asks for it."""
    try:
        from lstm_music.generation.stream import PieceStream

        entries = state.catalog.refresh()
        if entries:
            checkpoint = state.generator.cache.get(entries[0].path)
            for _ in PieceStream(checkpoint, SamplingOptions(tokens=WARM_UP_TOKENS, seed=1)):
                pass
    except Exception:  # noqa: BLE001 - a request meets the same error and says it
        return


def _lifespan(runs: Path | None, workdir: Path | None, settings: dict[str, int]):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        root = Path(tempfile.mkdtemp(prefix="lstm-music-serve-", dir=workdir))
        remove = partial(shutil.rmtree, root, ignore_errors=True)
        atexit.register(remove)  # in case the server is killed before its shutdown
        pieces: Store[StoredPiece] = Store(settings["history"])
        queue = JobQueue(settings["workers"], settings["max_queue"], settings["per_client"])
        app.state.web = WebState(
            root=root,
            catalog=Catalog(runs),
            queue=queue,
            pieces=pieces,
            primers=Store(settings["history"]),
            generator=Generator(root / "pieces", pieces, settings["cache"]),
            max_upload_bytes=settings["max_upload_bytes"],
        )
        threading.Thread(target=warm_up, args=(app.state.web,), daemon=True).start()
        try:
            yield
        finally:
            await asyncio.to_thread(queue.shutdown)
            remove()
            atexit.unregister(remove)

    return lifespan


def create_app(
    runs: Path | None = None,
    workdir: Path | None = None,
    *,
    workers: int = 1,
    max_queue: int = 8,
    per_client: int = 0,
    max_upload_bytes: int = 2_000_000,
    history: int = 30,
    cache: int = 2,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The app serving the page and the API.

    runs: folder searched for checkpoints (besides the shipped models); workdir: where the
    temporary folder goes (the system's by default); workers/max_queue: generation threads and
    the most requests admitted at once (running or waiting), the rest get 429; per_client: the
    most of them one client address may hold (0: half the queue); history: pieces
    kept (older ones are deleted); cache: checkpoints kept loaded; allowed_hosts: Host headers
    accepted (guards a local server against DNS rebinding), None for any.
    """
    if workers < 1 or max_queue < workers or cache < 1 or max_upload_bytes < 1:
        raise LstmMusicError("need workers >= 1, queue >= workers, cache and upload > 0")
    if not 0 <= per_client <= max_queue:
        raise LstmMusicError(f"--per-client must be 1 to --queue ({max_queue}), or 0 for half")
    if history < MAX_NUM:  # else a request's own pieces could be dropped before it answers
        raise LstmMusicError(f"--history must be at least {MAX_NUM}, the most pieces per request")
    if workers > MAX_WORKERS or max_queue > MAX_QUEUE or history > MAX_HISTORY:
        raise LstmMusicError(
            f"--workers, --queue and --history go up to {MAX_WORKERS}, {MAX_QUEUE:,} and "
            f"{MAX_HISTORY:,} (threads, waiting requests and kept pieces all take memory)"
        )
    settings = {"workers": workers, "max_queue": max_queue, "per_client": per_client,
                "history": history, "cache": cache,
                "max_upload_bytes": max_upload_bytes}  # fmt: skip
    app = FastAPI(
        title="lstm-music",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(runs, workdir, settings),
    )
    _add_error_handlers(app)
    app.include_router(router)
    app.include_router(live_router)
    app.mount("/static", StaticFiles(directory=static_folder()), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static_folder() / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_middleware(GuardMiddleware, max_body=max_upload_bytes + MULTIPART_OVERHEAD)
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
