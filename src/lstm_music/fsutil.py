"""Folder writes that readers never see half done."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
