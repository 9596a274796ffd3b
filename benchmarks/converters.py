"""Score converters for `corpus import` (issue 21), measured: music21 against verovio on the
same files, each conversion in a process of its own (a converter that crashes or hangs loses
one file, and says so).

    pip install verovio                      # not a dependency: measured here only
    python benchmarks/converters.py FILE_OR_FOLDER [...] [--files 40] [--timeout 120]

music21 runs the importer's own writer (repeats expanded, else played straight through when
they cannot be). Per converter and format: files converted, failed (error, crash by signal,
time-out), median and total seconds per file (the process's whole life: start-up included, as in the
importer's workers), notes written (symusic's count of the MIDI file), and per file the notes
against music21's where both converted (median ratio; repeats expanded or not, parts dropped,
grace notes and ornaments make them differ).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVERT = {
    "music21": """
import sys, warnings, contextlib, io
warnings.simplefilter("ignore")
from pathlib import Path
from music21 import converter
from lstm_music.corpus.builtin_convert import _write_midi  # the importer's writer
with contextlib.redirect_stderr(io.StringIO()):
    fmt = "humdrum" if sys.argv[1].endswith(".krn") else "musicxml"
    _write_midi(converter.parse(sys.argv[1], format=fmt, forceSource=True), Path(sys.argv[2]))
""",
    "verovio": """
import sys, base64, verovio
verovio.enableLog(verovio.LOG_OFF)
tk = verovio.toolkit()
path = sys.argv[1]
if path.endswith(".mxl"):
    ok = tk.loadZipDataBase64(base64.b64encode(open(path, "rb").read()).decode())
else:
    ok = tk.loadFile(path)
if not ok:
    sys.exit("verovio could not load the file")
open(sys.argv[2], "wb").write(base64.b64decode(tk.renderToMIDI()))
""",
}


def files_of(inputs: list[str], limit: int) -> list[Path]:
    found: list[Path] = []
    for name in inputs:
        path = Path(name)
        found += (
            sorted(path.rglob("*.krn")) + sorted(path.rglob("*.mxl")) if path.is_dir() else [path]
        )
    return found[:limit] if limit else found


def convert(converter: str, path: Path, out: Path, timeout: float) -> tuple[float, int | None, str]:
    """Seconds, notes written (None: failed) and why it failed."""
    import symusic

    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", CONVERT[converter], str(path), str(out)],
                              capture_output=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return timeout, None, "time-out"
    seconds = time.perf_counter() - started
    if done.returncode < 0:
        return seconds, None, f"crashed (signal {-done.returncode})"
    if done.returncode or not out.exists():
        return seconds, None, "error: " + (done.stderr.decode(errors="replace").strip()[-80:])
    try:
        return seconds, symusic.Score(str(out)).note_num(), ""
    except Exception as error:  # noqa: BLE001 - a MIDI file symusic refuses is a failure
        return seconds, None, f"unreadable MIDI: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="score files or folders (.krn, .mxl)")
    parser.add_argument("--files", type=int, default=40, help="at most this many per input")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    for name in args.inputs:
        files = files_of([name], args.files)
        notes: dict[str, list[int | None]] = {}
        print(f"\n{name}: {len(files)} files")
        print(f"{'converter':<9} {'converted':>9} {'failed':>6} {'median s':>8} {'total s':>8} "
              f"{'notes':>9} {'notes / music21 (median)':>25}  failures")  # fmt: skip
        with tempfile.TemporaryDirectory() as work:
            for converter in CONVERT:
                results = [convert(converter, f, Path(work) / f"{converter}-{i}.mid",
                                   args.timeout) for i, f in enumerate(files)]  # fmt: skip
                notes[converter] = [n for _, n, _ in results]
                ok = [n for n in notes[converter] if n is not None]
                why = sorted({w.split(":")[0] for _, _, w in results if w})
                ratios = [b / a for a, b in zip(notes["music21"], notes[converter]) if a and b]
                ratio = f"{statistics.median(ratios):.3f}" if ratios else "-"
                seconds = [s for s, _, _ in results]
                print(f"{converter:<9} {len(ok):>9} {len(files) - len(ok):>6} "
                      f"{statistics.median(seconds):>8.2f} {sum(seconds):>8.1f} {sum(ok):>9,} "
                      f"{ratio:>25}  {', '.join(why)}")  # fmt: skip


if __name__ == "__main__":
    main()
