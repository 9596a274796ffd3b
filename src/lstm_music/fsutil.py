"""File and folder writes that readers never see half done."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from lstm_music.errors import LstmMusicError

# what a path names when it is not a regular file, for messages
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """`path` holds either its old content or `data`, whatever happens meanwhile.

    The temporary file is named `.{name}.XXXXXXXX` beside `path`, so a folder's owner can
    recognise (and remove) what a kill left behind; it is on disk before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def swap_in(temporary: Path, final: Path) -> None:
    """Put the finished folder `temporary` at `final` with renames, replacing what was there.

    The old folder is renamed aside first and deleted last, so `final` always names either the
    old or the new complete folder.
    """
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, final)


def file_sha256(path: str | Path) -> str:
    """The file's sha256 in hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def not_regular(path: str | Path) -> str:
    """ "" for a regular file (or a link to one), else why not, e.g. "not a regular file (a
    named pipe)". Reading a named pipe blocks until someone writes to it, and a device such as
    /dev/zero never ends: a reader that asks first refuses them instead of hanging. OSError
    (a missing file) is left to the caller, who already says it."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def is_regular_file(path: str | Path) -> bool:
    """True for a regular file (or a link to one); False for anything else, missing included.
    For readers of optional files (metrics, records) that skip what they cannot read."""
    try:
        return not not_regular(path)
    except OSError:
        return False


def require_regular_file(
    path: str | Path, what: str, error: type[LstmMusicError] = LstmMusicError
) -> None:
    """Raise `error` "{what}: not a regular file (a named pipe)" unless `path` is a regular
    file (see `not_regular`); `what` names the file for the user, e.g. "checkpoint x.fifo"."""
    problem = not_regular(path)
    if problem:
        raise error(f"{what}: {problem}")
