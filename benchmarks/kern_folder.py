"""A tuning folder of another style (issue 20): Chopin's piano music from an openly licensed
Humdrum collection, converted to MIDI with music21, one edition per work.

    git clone https://github.com/pl-wnifc/humdrum-chopin-first-editions /tmp/chopin
    python benchmarks/kern_folder.py /tmp/chopin/kern /tmp/chopin-midi --files 80

The source is the Fryderyk Chopin Institute's "Chopin first editions" (CC BY 4.0, credited in
CREDITS.txt written beside the MIDI files). Its files are named WORK-EDITION-SIGLUM[-PART].krn:
several editions of one work are kept once (the first in name order), and files of a single
instrument of a chamber work (`-piano`, `-violino`, ...) are left out, so the folder is solo
piano. Each file is converted in its own process with a time limit (a converter that hangs or
crashes loses that file only); files whose header names a licence other than CC BY are left out.
This is a benchmark helper, not the `corpus import` of the next issue.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

NAME = re.compile(r"^(?P<work>\d+)-(?P<edition>[^-]+)-(?P<siglum>[^-]+)(?:-(?P<part>.+))?\.krn$")
CONVERT = """
import sys, music21
score = music21.converter.parse(sys.argv[1], format="humdrum")
score.write("midi", fp=sys.argv[2])
"""


def chosen(kern: Path, limit: int) -> list[Path]:
    """One file per work and movement, solo piano only, in name order."""
    seen: set[tuple[str, str]] = set()
    files = []
    for path in sorted(kern.glob("*.krn")):
        match = NAME.match(path.name)
        if not match:
            continue
        part = match["part"] or ""
        if part and not part.isdigit():  # one instrument of a chamber work
            continue
        if (match["work"], part) in seen:
            continue
        seen.add((match["work"], part))
        files.append(path)
    return files[:limit] if limit else files


def licence(path: Path) -> str:
    """The file's !!!YEM (copyright message) record, or ''."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("!!!YEM"):
            return line.split(":", 1)[-1].strip()
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kern", type=Path, help="the clone's kern/ folder")
    parser.add_argument("out", type=Path, help="MIDI folder to write")
    parser.add_argument("--files", type=int, default=80, help="at most this many works (0: all)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per file")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    kept, failed = [], []
    for path in chosen(args.kern, args.files):
        stated = licence(path)
        if stated and "CC BY" not in stated.upper() and "CC-BY" not in stated.upper():
            failed.append(f"{path.name}: licence {stated!r}")
            continue
        target = args.out / (path.stem + ".mid")
        if not target.exists():
            try:
                subprocess.run([sys.executable, "-c", CONVERT, str(path), str(target)],
                               check=True, timeout=args.timeout, capture_output=True)  # fmt: skip
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                target.unlink(missing_ok=True)
                failed.append(f"{path.name}: {type(error).__name__}")
                continue
        kept.append(f"{target.name}\t{path.name}\t{stated or 'CC BY 4.0 (repository)'}")
        print(f"{len(kept)} {path.name}", flush=True)
    credits = ("Converted from pl-wnifc/humdrum-chopin-first-editions, (c) Narodowy Instytut "
               "Fryderyka Chopina, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), "
               "with music21; one edition per work.\n\n" + "\n".join(kept) + "\n")  # fmt: skip
    (args.out / "CREDITS.txt").write_text(credits)
    print(f"{len(kept)} converted, {len(failed)} left out" + "".join(f"\n  {x}" for x in failed))


if __name__ == "__main__":
    main()
