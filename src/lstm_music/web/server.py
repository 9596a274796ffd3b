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
BODY_SECONDS = 10  # a request body must bring MIN_BODY_RATE bytes a second over each such window
MIN_BODY_RATE = 1000  # bytes a second (2 MB, the default upload limit, in at most 2,000 s)
MAX_CONNECTIONS = 256  # open at once (and at most half the file descriptors): see connection_cap
FULL_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                 b"Connection: close\r\nContent-Length: 31\r\n\r\n"
                 b"too many connections: try again")  # fmt: skip
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
    except UnicodeError as error:  # a label over 63 characters, or a name IDNA cannot encode
        shown = host if len(host) <= 60 else f"{host[:30]}... ({len(host):,} characters)"
        raise LstmMusicError(f"--host {shown}: not a valid host name") from error
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
    max_connections: int = MAX_CONNECTIONS,
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
    if max_connections < 1:
        raise LstmMusicError(f"--max-connections must be at least 1, not {max_connections}")
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
    config = server_config(app, host, port, access_log=access_log, max_connections=max_connections)
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
    body_timeout: float = 0,
    min_body_rate: float = 0,
    max_connections: int = 0,
):
    """uvicorn's settings: idle connections time out (`keep_alive` s, KEEP_ALIVE_SECONDS by
    default), so do requests whose headers are not complete within `header_timeout` s
    (HEADER_SECONDS) and bodies that bring less than `min_body_rate` bytes a second
    (MIN_BODY_RATE) over `body_timeout` s (BODY_SECONDS); at most `max_connections`
    (MAX_CONNECTIONS, within `connection_cap`) are open at once; and Ctrl-C does not wait for
    every queued generation. uvicorn's own `limit_concurrency` is not used: it answers 503 to
    every new request, GET /api/status too, while stalled clients hold the connections."""
    import uvicorn

    cap = connection_cap(max_connections or MAX_CONNECTIONS)
    protocol = idle_timeout_protocol(
        header_timeout or HEADER_SECONDS,
        body_timeout or BODY_SECONDS,
        min_body_rate or MIN_BODY_RATE,
        cap,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        backlog=accept_batch(cap),
        log_level="warning",
        access_log=access_log,
        lifespan="on",
        timeout_keep_alive=keep_alive or KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=3,
    )


def idle_timeout_protocol(
    header_seconds: float = HEADER_SECONDS,
    body_seconds: float = BODY_SECONDS,
    min_body_rate: float = MIN_BODY_RATE,
    max_connections: int = MAX_CONNECTIONS,
) -> type:
    """uvicorn's h11 protocol with timers and a cap, so no client holds a connection (and a file
    descriptor) for ever, and many cannot take them all:

    - the keep-alive timeout also armed when a connection opens (uvicorn arms it only after a
      response);
    - a deadline of `header_seconds` from a request's first byte to the end of its headers
      (uvicorn cancels its timer at the first byte, so a client that sends half a request
      line and stops would otherwise never be let go);
    - a body that must keep coming: at least `min_body_rate` bytes a second over each window
      of `body_seconds` (a client that sends `Content-Length: 1000000`, then `{` and nothing,
      is let go after one window; the largest upload may take its size / rate);
    - at most `max_connections` open at once: past it, the oldest connection that is still
      sending its request (or idles between requests) is closed to make room, so a crowd of
      stalled clients cannot stop a quick request such as GET /api/status; when every
      connection is being answered, the newcomer gets 503.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleTimeoutH11Protocol(H11Protocol):
        header_task = None  # the running header deadline, if any
        body_task = None  # the running body window, if any
        body_bytes = 0  # bytes received in the body's current window
        opened = 0.0  # when the connection was made (the oldest stalled one goes first)

        def connection_made(self, transport) -> None:  # noqa: ANN001 (asyncio.Transport)
            super().connection_made(transport)
            self.opened = self.loop.time()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            if len(self.connections) > max_connections and not self.make_room():
                transport.write(FULL_RESPONSE)
                transport.close()

        def make_room(self) -> bool:
            """Close the oldest connection that is only waiting on its client; False if none."""
            waiting = [
                other
                for other in self.connections
                if other is not self and getattr(other, "waits_on_client", bool)()
            ]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda other: other.opened)
            oldest.transport.close()
            oldest.connections.discard(oldest)  # counted out now; connection_lost follows
            return True

        def waits_on_client(self) -> bool:
            """True while the client still owes its request's headers or body (or idles)."""
            if self.transport.is_closing():
                return False
            answered = self.cycle is None or self.cycle.response_complete
            their = self.conn.their_state
            return their is h11.SEND_BODY or (their is h11.IDLE and answered)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            closing = self.transport.is_closing()
            waiting = self.conn.their_state is h11.IDLE and not closing
            if waiting and self.header_task is None:  # a request has begun: its deadline runs
                self.header_task = self.loop.call_later(header_seconds, self.header_timed_out)
            elif not waiting:
                self.cancel_header_timer()
            if self.conn.their_state is h11.SEND_BODY and not closing:
                self.body_bytes += len(data)
                if self.body_task is None:
                    self.body_task = self.loop.call_later(body_seconds, self.body_window_over)
            else:
                self.cancel_body_timer()

        def header_timed_out(self) -> None:
            self.header_task = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def body_window_over(self) -> None:
            """Close the connection when its body brought too little in the last window
            (unless the app is the one not reading it yet: uvicorn paused the socket)."""
            self.body_task = None
            if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
                return
            app_behind = self.flow.read_paused and not self.cycle.response_complete
            if not app_behind and self.body_bytes < max(1.0, min_body_rate * body_seconds):
                self.transport.close()
                return
            self.body_bytes = 0
            self.body_task = self.loop.call_later(body_seconds, self.body_window_over)

        def cancel_header_timer(self) -> None:
            if self.header_task is not None:
                self.header_task.cancel()
                self.header_task = None

        def cancel_body_timer(self) -> None:
            if self.body_task is not None:
                self.body_task.cancel()
                self.body_task = None
            self.body_bytes = 0

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_header_timer()
            self.cancel_body_timer()
            super().connection_lost(exc)

    return IdleTimeoutH11Protocol


def accept_batch(cap: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in one go
    (uvicorn's 2,048 by default): an eighth of the cap, so that the bursts accepted before
    their connections make room (`make_room`; the closed ones are let go an event-loop turn
    later, two or three bursts on) stay within the file descriptors `connection_cap` leaves."""
    return max(8, cap // 8)


def connection_cap(asked: int = MAX_CONNECTIONS) -> int:
    """The connections to allow: `asked`, but at most half this process's file descriptors, so
    that with a burst of `accept_batch` more and the server's own (a dozen: models, pieces)
    `accept` never runs out of them."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no resource module (Windows)
        return asked
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return asked
    return max(1, min(asked, soft // 2))


def local_hosts(host: str) -> list[str]:
    """Host headers a local server answers: the usual loopback names and the one it binds."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    named = f"[{host}]" if ":" in host else host
    return hosts if named in hosts else [*hosts, named]
