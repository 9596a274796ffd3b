"""The files a run folder holds that are a run's own: which they are, clearing them for a fresh
start, setting old checkpoints aside, removing what an interrupted write left, and trimming
metrics.csv back to a resumed position. Nothing else in a folder is touched."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from lstm_music.fsutil import is_regular_file, write_bytes_atomically
from lstm_music.model.runs import BEST_CHECKPOINT, LAST_CHECKPOINT, RUN_FILES, read_metrics_rows

# what an interrupted write leaves: our `.{name}.XXXXXXXX` (mkstemp), and `.tmpXXXXXX` from
# safetensors' own save_file (lstm-music 0.x before this fix) or the rank files of format 1
_OUR_TEMPORARY = re.compile(
    r"^\.(best|last|train_state(\.rank\d+)?)\.safetensors\.[A-Za-z0-9_]{8}$"
    r"|^\.(metrics\.csv|loss\.png|config\.json)\.[A-Za-z0-9_]{8}$"
)
_SAFETENSORS_TEMPORARY = re.compile(r"^\.tmp[A-Za-z0-9]{6}$")


def remove_leftovers(run_dir: Path) -> int:
    """Delete the temporary files an interrupted run left in `run_dir`; how many were removed.

    Only names that our writers (or safetensors' writer, for `.tmpXXXXXX`) produce are touched,
    and a `.tmpXXXXXX` only when it is empty or starts like a safetensors file.
    """
    removed = 0
    for path in run_dir.iterdir() if run_dir.is_dir() else []:
        ours = _OUR_TEMPORARY.match(path.name) or (
            _SAFETENSORS_TEMPORARY.match(path.name) and _looks_like_safetensors(path)
        )
        if ours and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _looks_like_safetensors(path: Path) -> bool:
    if not is_regular_file(path):  # a named pipe would block the read
        return False
    try:
        with path.open("rb") as file:
            head = file.read(9)
    except OSError:
        return False
    return head == b"" or (len(head) == 9 and head[8:9] == b"{")


def clear_run(run_dir: Path) -> None:
    """Remove a previous run's own files (and nothing else), for a replaced run or a fresh start."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for old in run_dir.glob("train_state.rank*.safetensors"):  # format 1's per-process files
        old.unlink()
    remove_leftovers(run_dir)


def set_aside(run_dir: Path) -> list[str]:
    """Rename best/last to `*.before-restart.safetensors` (a run about to start over keeps its
    old checkpoints), numbered `-2`, `-3`... so that no earlier restart's pair is overwritten;
    the new names."""
    names = [n for n in (BEST_CHECKPOINT, LAST_CHECKPOINT) if (run_dir / n).is_file()]
    number = 1
    while any(_aside(run_dir, n, number).exists() for n in (BEST_CHECKPOINT, LAST_CHECKPOINT)):
        number += 1
    for name in names:
        os.replace(run_dir / name, _aside(run_dir, name, number))
    return [_aside(run_dir, name, number).name for name in names]


def _aside(run_dir: Path, name: str, number: int) -> Path:
    """best.safetensors -> best.before-restart.safetensors (-2, -3... after the first)."""
    stem, dot, extension = name.partition(".")
    suffix = "" if number == 1 else f"-{number}"
    return run_dir / f"{stem}.before-restart{suffix}{dot}{extension}"


def truncate_metrics(path: Path, step: int, fields: tuple[str, ...]) -> int:
    """Drop metrics.csv rows logged after `step` (the resumed position); how many were dropped.

    A run killed after logging but before saving its state logged steps that the resumed run
    will train (and log) again.
    """
    rows = read_metrics_rows(path)
    kept = [row for row in rows if (row.get("step") or "").isdigit() and int(row["step"]) <= step]
    if len(kept) == len(rows):
        return 0
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    write_bytes_atomically(path, text.getvalue().encode())
    return len(rows) - len(kept)


__all__ = ["clear_run", "remove_leftovers", "set_aside", "truncate_metrics"]
