"""The web server under hostile load (issue 19, points 1-3), baseline and today in one run.

    python benchmarks/server.py [--baseline-src OLD/src] [--only stall,primer,streams]

Each tree (`baseline`: --baseline-src first on PYTHONPATH; `today`: this checkout's src/) runs
its own `lstm-music serve` in a subprocess (`bash -c "ulimit -n 256; exec python -m lstm_music
serve --port P ..."`, a free port, a fresh server for each measure, its output in a log file),
and is driven over real sockets from this process, all from 127.0.0.1 unless said otherwise:

1. stall: --stalled clients (300) send `POST /api/conversation` with `Content-Length: 1000000`,
   then `{` and nothing. With them connected, does `GET /api/status` answer, and how fast?
   --stall-wait seconds (12) later: how many of the stalled sockets are still open (no
   answer, not closed), and does status answer? Then the stalled sockets close: does status
   answer again? Lines of "Too many open files" in the server's output are counted.
   Open-file limit 256 (1,024 is a common desktop default; 256 reaches exhaustion sooner).
2. primer: a primer of --primer-notes notes (199,000: under the readers' 200,000-note cap;
   one piano track made here with symusic: 1.6 MB) is uploaded to `POST /api/primers` (the
   server started with --max-upload-mb 4 for more notes), then 3 `POST /api/generate` naming
   it (bach-chorales, 64 tokens, primer_tokens 256) and 1 without, after one warm-up generate
   that loads the model: seconds per request, as the client sees it.
3. streams: 8 clients open `POST /api/stream` of a --stream-seconds piece (120 s) with a
   4 KiB receive buffer and never read. How many hold a slot (status's `busy`), what a 9th
   request (`POST /api/generate`, 16 tokens) gets, sent at 1 s from 127.0.0.1 (the same
   address as the 8) and at once from 127.0.0.2 (another loopback address: another client),
   and how long until every slot is free again (status's `busy` back at 0, the 9th requests
   answered; given up after 150 s). The piece: --stream-seconds (120, the server's longest)
   at --stream-tempo (300): about 290 KB of events, the most a stream can send. On loopback
   that still fits in the kernel's and the server's buffers (measured: slots come free as
   each piece is generated, in turn on one worker), so no stall timer fires here: this
   measures who gets a slot and how long the slots stay held, not the stall timeout.

Every socket has a timeout, every server is terminated (then killed) in a `finally`. A run
takes about 4-5 minutes on 2 shared cores. The table comes last; on a shared machine compare
the two trees within one run (ratios), not with other runs.

    mkdir -p /tmp/base19 && git archive 3a0bfbf src | tar -x -C /tmp/base19
    python benchmarks/server.py --baseline-src /tmp/base19/src
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
HOST = "127.0.0.1"
MEASURES = ("stall", "primer", "streams")
MODEL = "bach-chorales"


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def request(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    timeout: float = 30,
    content_type: str = "application/json",
    source: str | None = None,
) -> tuple[int | str, bytes, float]:
    """One HTTP/1.1 request on its own connection: (status code or why it failed, body,
    seconds)."""
    started = time.perf_counter()
    try:
        with socket.create_connection(
            (HOST, port), timeout=timeout, source_address=(source, 0) if source else None
        ) as conn:
            conn.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Connection: close\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
                if time.perf_counter() - started > timeout:
                    raise TimeoutError
    except OSError as error:
        return f"failed ({type(error).__name__})", b"", time.perf_counter() - started
    head, _, content = data.partition(b"\r\n\r\n")
    try:
        code: int | str = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        code = "no answer"
    return code, content, time.perf_counter() - started


def post_json(port: int, path: str, body: dict, timeout: float = 120, **kw: Any) -> tuple:
    """POST a JSON body: (code, parsed answer or {}, seconds)."""
    code, content, seconds = request(port, "POST", path, json.dumps(body).encode(), timeout, **kw)
    try:
        answer = json.loads(content) if code == 200 else {"raw": content[:200].decode("latin-1")}
    except ValueError:
        answer = {}
    return code, answer, seconds


def busy(port: int) -> int | str:
    """status's `busy` (requests running or waiting), or why it could not be read."""
    code, content, _ = request(port, "GET", "/api/status", timeout=10)
    return json.loads(content)["busy"] if code == 200 else code


@contextmanager
def serving(src: Path, work: Path, *flags: str) -> Iterator[tuple[int, Path]]:
    """`lstm-music serve` of the tree `src`, open-file limit 256: (port, its log file). Always
    terminated (killed after 15 s) when the block ends."""
    port, log = free_port(), work / f"serve-{time.time_ns()}.log"
    command = f"ulimit -n 256; exec {sys.executable} -m lstm_music serve --port {port} " + " ".join(
        flags
    )
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", command],
            env=dict(os.environ, PYTHONPATH=str(src)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    try:
        deadline = time.monotonic() + 90
        while request(port, "GET", "/api/status", timeout=2)[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-500:]}")
            time.sleep(0.3)
        yield port, log
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(15)


def socket_state(conn: socket.socket) -> str:
    """open (nothing received, not closed), answered (the server sent something) or closed."""
    conn.settimeout(0.01)
    try:
        return "answered" if conn.recv(1, socket.MSG_PEEK) else "closed"
    except TimeoutError:
        return "open"
    except OSError:
        return "closed"


def stall(src: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measure 1: stalled request bodies against the status page."""
    head = (
        f"POST /api/conversation HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json"
        "\r\nContent-Length: 1000000\r\n\r\n{"
    ).encode()
    out: dict[str, Any] = {}
    with serving(src, work) as (port, log):
        socks, failed = [], 0
        try:
            for _ in range(args.stalled):
                try:
                    conn = socket.create_connection((HOST, port), timeout=5)
                    socks.append(conn)
                    conn.sendall(head)
                except OSError:
                    failed += 1
            sent = time.monotonic()
            time.sleep(1)
            out["status with them"] = status_line(port)
            time.sleep(max(0.0, sent + args.stall_wait - time.monotonic()))
            states = [socket_state(conn) for conn in socks]
            later = f"{args.stall_wait:g} s later"
            out[f"still open {later}"] = f"{states.count('open')} of {args.stalled}"
            out[f"answered / closed {later}"] = (
                f"{states.count('answered')} / {states.count('closed')}"
            )
            out[f"status {later}"] = status_line(port)
        finally:
            for conn in socks:
                conn.close()
        time.sleep(1)
        out["status after they close"] = status_line(port)
        out["connects failed"] = failed
        out["'Too many open files' lines"] = log.read_text(errors="replace").count(
            "Too many open files"
        )
    return out


def status_line(port: int) -> str:
    """`GET /api/status`: its code and seconds, within 10 s."""
    code, _, seconds = request(port, "GET", "/api/status", timeout=10)
    return f"{code} in {seconds:.2f} s"


def primer_file(path: Path, notes: int) -> int:
    """A one-track MIDI file of `notes` notes (pitches cycling in a C major-ish band), made with
    symusic; its size in bytes."""
    from symusic import Note, Score, Track

    score = Score(480)
    track = Track(program=0, name="piano")
    pitches = (60, 62, 64, 65, 67, 69, 71, 72, 67, 64)
    track.notes.extend(Note(i * 120, 110, pitches[i % len(pitches)], 80) for i in range(notes))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path.stat().st_size


def upload(port: int, path: Path) -> tuple:
    """`POST /api/primers` of a file as multipart form data: (code, answer, seconds)."""
    boundary = "benchmark-boundary-19"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: audio/midi\r\n\r\n'
    ).encode()
    body += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    code, content, seconds = request(
        port, "POST", "/api/primers", body, 120, f"multipart/form-data; boundary={boundary}"
    )
    try:
        answer = json.loads(content)
    except ValueError:
        answer = {"raw": content[:200].decode("latin-1")}
    return code, answer, seconds


def primer(src: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measure 2: generates naming a huge uploaded primer, and one without."""
    path = work / "huge_primer.mid"
    size = path.stat().st_size if path.exists() else primer_file(path, args.primer_notes)
    out: dict[str, Any] = {"primer file": f"{args.primer_notes:,} notes, {size / 1e6:.2f} MB"}
    piece = {"model": MODEL, "tokens": 64, "seed": 1}
    with serving(src, work, "--max-upload-mb", "4") as (port, _):
        post_json(port, "/api/generate", piece)  # loads the model
        code, answer, seconds = upload(port, path)
        out["upload"] = f"{code} in {seconds:.2f} s ({answer.get('notes', answer)} notes kept)"
        if code != 200:
            return out
        named = {**piece, "primer_id": answer["id"], "primer_tokens": 256}
        times = []
        for index in range(3):
            code, _, seconds = post_json(port, "/api/generate", named)
            times.append(seconds)
            out[f"generate with primer #{index + 1}"] = f"{code} in {seconds:.2f} s"
        code, _, seconds = post_json(port, "/api/generate", piece)
        out["generate without primer"] = f"{code} in {seconds:.2f} s"
        out["with / without primer"] = f"{sum(times) / len(times) / seconds:.1f}x"
    return out


def stream_sockets(port: int, seconds: float, tempo: float, count: int) -> list[socket.socket]:
    """`count` streams of a `seconds` piece whose clients never read (4 KiB receive buffers)."""
    body = json.dumps({"model": MODEL, "seconds": seconds, "tempo": tempo, "seed": 1}).encode()
    socks = []
    for _ in range(count):
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(5)
        conn.connect((HOST, port))
        conn.sendall(
            f"POST /api/stream HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        socks.append(conn)
    return socks


def first_code(conn: socket.socket) -> int | str:
    """The status code a stream was answered with, peeked (its receive buffer stays full);
    "none" when nothing came yet (the stream waits for a worker)."""
    conn.settimeout(0.2)
    try:
        line = conn.recv(16, socket.MSG_PEEK)
        return int(line.split(b" ")[1])
    except (OSError, IndexError, ValueError):
        return "none"


def streams(src: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measure 3: eight streams never read, and a ninth client from each of two addresses
    (sent together at 1 s, in threads); status's `busy` is followed until it is 0."""
    out: dict[str, Any] = {}
    small = {"model": MODEL, "tokens": 16, "seed": 2}
    with serving(src, work) as (port, _), ThreadPoolExecutor(2) as pool:
        post_json(port, "/api/generate", small)  # loads the model
        socks = stream_sockets(port, args.stream_seconds, args.stream_tempo, 8)
        started = time.monotonic()
        try:
            time.sleep(1)
            out["slots held at 1 s (busy)"] = busy(port)
            ninth = {
                source: pool.submit(post_json, port, "/api/generate", small, 150, source=source)
                for source in ("127.0.0.1", "127.0.0.2")
            }
            codes = [first_code(conn) for conn in socks]
            out["the 8 streams' answers"] = ", ".join(
                f"{codes.count(c)}x {c}" for c in sorted(set(codes), key=str)
            )
            timeline = follow_busy(port, started, list(ninth.values()))
            out["busy over time (value at s)"] = ", ".join(f"{b}@{t:.0f}" for t, b in timeline)
            last, held = timeline[-1]
            out["all slots free after"] = f"{last:.1f} s" if held == 0 else f"> {last:.0f} s"
            for source, future in ninth.items():
                code, _, seconds = future.result()
                out[f"9th request from {source}"] = f"{code} in {seconds:.2f} s"
        finally:
            for conn in socks:
                conn.close()
    return out


def follow_busy(port: int, started: float, pending: list[Future]) -> list[tuple[float, Any]]:
    """status's `busy` every 0.5 s, kept where it changes, until it is 0 with `pending` done
    (or 150 s after `started`): [(seconds since `started`, busy)]."""
    timeline: list[tuple[float, Any]] = []
    while True:
        held, now = busy(port), time.monotonic() - started
        if not timeline or timeline[-1][1] != held:
            timeline.append((now, held))
        if (held == 0 and all(f.done() for f in pending)) or now > 150:
            timeline.append((now, held))
            return timeline
        time.sleep(0.5)


def print_table(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """One markdown table per measure: a row per quantity, a column per tree."""
    trees = list(results)
    for measure in MEASURES:
        rows = [results[t].get(measure, {}) for t in trees]
        if not any(rows):
            continue
        print(
            f"\n### {measure}\n\n| | " + " | ".join(trees) + " |\n| --- |" + " --- |" * len(trees)
        )
        for key in dict.fromkeys(k for row in rows for k in row):
            print(f"| {key} | " + " | ".join(str(row.get(key, "")) for row in rows) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src/")
    parser.add_argument("--only", default=",".join(MEASURES), help="comma list of measures")
    parser.add_argument("--stalled", type=int, default=300, help="stalled clients (300)")
    parser.add_argument("--stall-wait", type=float, default=12, help="seconds (12)")
    parser.add_argument("--primer-notes", type=int, default=199_000, help="notes (199,000)")
    parser.add_argument("--stream-seconds", type=float, default=120, help="piece length (120)")
    parser.add_argument("--stream-tempo", type=float, default=300, help="its tempo (300)")
    args = parser.parse_args()
    only = [m for m in args.only.split(",") if m]
    if unknown := set(only) - set(MEASURES):
        parser.error(f"--only: unknown measure(s) {', '.join(sorted(unknown))}")
    if args.baseline_src and not (args.baseline_src / "lstm_music").is_dir():
        parser.error(f"--baseline-src {args.baseline_src}: no lstm_music package there")
    trees = {"today": SRC}
    if args.baseline_src:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory(prefix="server_bench_") as temporary:
        for measure in only:
            for name, src in trees.items():
                started = time.monotonic()
                results[name][measure] = globals()[measure](src, Path(temporary), args)
                print(f"{measure}, {name}: {time.monotonic() - started:.0f} s", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
