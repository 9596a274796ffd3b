"""`lstm-music serve`: a local web page to choose a model, generate, and listen."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from lstm_music.errors import LstmMusicError

DEFAULT_RUNS = Path("runs")  # where the README's commands write runs

DESCRIPTION = """\
Start a small web server with one page: choose a model (every checkpoint found under --runs,
./runs by default when it exists: each run folder's best.safetensors, or the .safetensors files
of a folder without one; then the shipped models), read its model card or training metrics and
loss curve, set the sampling (temperature, top-k, top-p), length, seed and number of pieces,
optionally upload a MIDI primer, and press Generate. Each piece comes back as an audio player, a
piano roll, and MIDI and WAV downloads; the page keeps a history of the pieces of this server's
life, newest first.

Live: Play live streams the piece as the model writes it and plays it at once in the browser
(a SoundFont synthesizer shipped with the page), drawing the piano roll as notes arrive. Play
along on the on-screen keyboard (or the letter rows A W S E D F T G Y H U J K, or a MIDI
keyboard): after a pause the model answers your phrase in your tempo; the whole conversation
downloads as MIDI. Streaming: POST /api/stream (server-sent events, described at /docs).

The page loads nothing from the internet. The JSON API behind it is documented at /docs (that
page loads its viewer from a CDN) and works without the page, e.g.
  curl -X POST localhost:8000/api/generate -H 'Content-Type: application/json' \\
       -d '{"model": "bach-chorales", "seconds": 20, "seed": 1}'

Safe by default: it listens on 127.0.0.1 (this computer only) unless --host says otherwise;
uploads are limited in size and must be MIDI files with notes; a request must send its headers
within 10 s and its body at 1,000 bytes a second or more (checked every 10 s), or it is dropped;
at most --max-connections are open at once; clients name models and pieces only by the ids the
server lists; generation runs in --workers threads, and when --queue
requests are already running or waiting (or one client address holds --per-client of them),
further ones are told to retry (HTTP 429); a stream whose client reads nothing gives its slot
back after a quarter of its piece's length (5-30 s).
Generated files live in a temporary folder that is deleted when the server stops (Ctrl-C).
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="a local web page to generate music and listen to it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: this computer only; 0.0.0.0: every network, "
        "with no authentication)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument(
        "--runs",
        type=Path,
        metavar="DIR",
        help=f"folder searched for your trained checkpoints (default: {DEFAULT_RUNS}, when it "
        "exists)",
    )
    parser.add_argument("--workers", type=int, default=1, help="generation threads (1)")
    parser.add_argument(
        "--queue",
        type=int,
        default=8,
        help="requests admitted at once, running or waiting; more get 'busy, retry' (8)",
    )
    parser.add_argument(
        "--per-client",
        type=int,
        default=0,
        metavar="N",
        help="of those, the most one client address may hold (default: half of --queue)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=256,
        metavar="N",
        help="connections open at once (at most half the open-file limit); past it the oldest "
        "one still sending its request is closed (256)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=2.0, help="largest MIDI primer accepted (2)"
    )
    parser.add_argument(
        "--history", type=int, default=30, help="pieces kept; older ones are deleted (30)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(run=run_serve)


def runs_folder(runs: Path | None) -> tuple[Path | None, str]:
    """The folder searched for runs (--runs, else ./runs when it exists) and a line saying so."""
    if runs is None and DEFAULT_RUNS.is_dir():
        return DEFAULT_RUNS, (f"lstm-music serve: your runs from ./{DEFAULT_RUNS} (the default "
                              "--runs), then the shipped models")  # fmt: skip
    if runs is None:
        return None, (f"lstm-music serve: the shipped models only (no ./{DEFAULT_RUNS} here; "
                      "--runs DIR adds the runs you trained)")  # fmt: skip
    return runs, f"lstm-music serve: your runs from {runs}, then the shipped models"


def run_serve(args: argparse.Namespace) -> int:
    from lstm_music.web import server

    runs, where = runs_folder(args.runs)

    def announce(url: str) -> None:
        if not server.is_local(args.host):
            print(
                f"warning: listening on {args.host}: the page is reachable from the network, "
                "with no authentication"
            )
        print(f"lstm-music serve: open {url}  (Ctrl-C to stop)", flush=True)
        print(where, flush=True)

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn has already shut down cleanly
        server.serve(
            args.host,
            args.port,
            runs,
            workers=args.workers,
            max_queue=args.queue,
            per_client=args.per_client,
            max_upload_bytes=upload_bytes(args.max_upload_mb),
            history=args.history,
            max_connections=args.max_connections,
            access_log=args.access_log,
            announce=announce,
        )
    print("lstm-music serve: stopped; generated files removed")
    return 0


def upload_bytes(megabytes: float) -> int:
    """--max-upload-mb as bytes; nan, non-positive values and over 100 GB are refused."""
    if not 0 < megabytes <= 100_000:  # nan fails too; 1e308 bytes is no int
        raise LstmMusicError(f"--max-upload-mb must be above 0 and at most 100000, not {megabytes}")
    return int(megabytes * 1e6)
