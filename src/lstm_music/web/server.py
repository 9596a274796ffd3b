"""Running the app with uvicorn: dependency and port checks first, so failures are one line."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

from lstm_music.errors import LstmMusicError

LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
KEEP_ALIVE_SECONDS = 5  # an idle connection is closed after this, also before its first request
HEADER_SECONDS = 10  # a request whose line and headers take longer (a slow drip) is dropped
INSTALL_HINT = 'the web page needs FastAPI and uvicorn: pip install "lstm-music[web]"'


def require_web_dependencies() -> None:
    """A one-line error naming the extra to install when FastAPI, uvicorn or multipart lack."""
    from importlib.util import find_spec

    for module in ("fastapi", "uvicorn", ("python_multipart", "multipart")):
        names = module if isinstance(module, tuple) else (module,)
        try:
            if not any(find_spec(name) for name in names):
                raise ImportError(name=names[0])
        except (ImportError, ValueError) as error:  # ValueError: None in sys.modules
            missing = getattr(error, "name", None) or names[0]
            raise LstmMusicError(f"{INSTALL_HINT} ({missing} is missing)") from error


def is_local(host: str) -> bool:
    """True when only this computer can reach `host` (a loopback address or localhost)."""
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/"


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be bound (in use, no such host)."""
    if not 0 <= port <= 65535:
        raise LstmMusicError(f"--port must be 0-65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise LstmMusicError(f"--host {host}: {error.strerror}") from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LstmMusicError(
                    f"port {port} is in use on {host}: choose another with --port"
                ) from error
            raise LstmMusicError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    runs: Path | None = None,
    *,
    workers: int = 1,
    max_queue: int = 8,
    per_client: int = 0,
    max_upload_bytes: int = 2_000_000,
    history: int = 100,
    access_log: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Check everything that can be checked, build the app, call `announce(url)`, and serve
    until Ctrl-C (uvicorn then runs the app's clean-up, which deletes the generated files)."""
    require_web_dependencies()
    import uvicorn

    from lstm_music.web.app import create_app

    if runs is not None and not runs.is_dir():
        raise LstmMusicError(f"--runs {runs}: no such folder")
    app = create_app(
        runs,
        workers=workers,
        max_queue=max_queue,
        per_client=per_client,
        max_upload_bytes=max_upload_bytes,
        history=history,
        allowed_hosts=local_hosts(host) if is_local(host) else None,
    )
    check_port(host, port)
    config = server_config(app, host, port, access_log=access_log)
    if announce is not None:
        announce(page_url(host, port))
    uvicorn.Server(config).run()


def server_config(
    app,
    host: str,
    port: int,
    *,
    access_log: bool = False,
    keep_alive: float = 0,
    header_timeout: float = 0,
):
    """uvicorn's settings: idle connections time out (`keep_alive` s, KEEP_ALIVE_SECONDS by
    default), so do requests whose headers are not complete within `header_timeout` s
    (HEADER_SECONDS), and Ctrl-C does not wait for every queued generation."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=idle_timeout_protocol(header_timeout or HEADER_SECONDS),
        log_level="warning",
        access_log=access_log,
        lifespan="on",
        timeout_keep_alive=keep_alive or KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=3,
    )


def idle_timeout_protocol(header_seconds: float = HEADER_SECONDS) -> type:
    """uvicorn's h11 protocol with two more timers, so no client holds a connection (and a file
    descriptor) for ever: the keep-alive timeout also armed when a connection opens (uvicorn
    arms it only after a response), and a deadline of `header_seconds` from a request's first
    byte to the end of its headers (uvicorn cancels its timer at the first byte, so a client
    that sends half a request line and stops would otherwise never be let go)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleTimeoutH11Protocol(H11Protocol):
        header_task = None  # the running header deadline, if any

        def connection_made(self, transport) -> None:  # noqa: ANN001 (asyncio.Transport)
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
            if waiting and self.header_task is None:  # a request has begun: its deadline runs
                self.header_task = self.loop.call_later(header_seconds, self.header_timed_out)
            elif not waiting:
                self.cancel_header_timer()

        def header_timed_out(self) -> None:
            self.header_task = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def cancel_header_timer(self) -> None:
            if self.header_task is not None:
                self.header_task.cancel()
                self.header_task = None

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_header_timer()
            super().connection_lost(exc)

    return IdleTimeoutH11Protocol


def local_hosts(host: str) -> list[str]:
    """Host headers a local server answers: the usual loopback names and the one it binds."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    named = f"[{host}]" if ":" in host else host
    return hosts if named in hosts else [*hosts, named]
