"""LilyPond scores (the Mutopia Project's) for `corpus import`: their header, and MIDI from them.

A Mutopia piece is a `.ly` file whose `\\header` names it (`mutopiatitle`, `mutopiacomposer`,
`mutopiainstrument`, `license`); it may include `.ily` files beside it. LilyPond itself writes the
MIDI (its `\\midi` block plays repeats, dynamics and tempo as the engraver reads them), from the
pip redistribution of LilyPond (`pip install lilypond`). The files were written for LilyPond
versions back to 2.8, so each is first updated by LilyPond's own `convert-ly`, on a copy: the
clone is never changed. One `\\score` with a `\\midi` block makes one MIDI file, so a sonata's
movements become pieces of their own; a file without a `\\midi` block makes none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

LILYPOND_SECONDS = 100  # per file, convert-ly and lilypond together (the worker's limit is 120)
_FIELD = r'(?:^|\s){key}\s*=\s*"((?:[^"\\]|\\.)*)"'


def lilypond_executable(name: str = "lilypond") -> str | None:
    """The pip package's LilyPond program (or `convert-ly`), else one on PATH, else None."""
    try:
        import lilypond

        return str(lilypond.executable(name))
    except (ImportError, AttributeError, OSError):
        return shutil.which(name)


def lilypond_header(text: str) -> dict[str, str]:
    """Licence, composer, title, instruments and work of a Mutopia file (empty strings where it
    says nothing; `work` empty when the file is no Mutopia piece, only a part included)."""

    def field(*keys: str) -> str:
        for key in keys:
            found = re.search(_FIELD.format(key=key), text, re.IGNORECASE | re.MULTILINE)
            if found and found.group(1).strip():
                return re.sub(r"\s+", " ", found.group(1)).strip()
        return ""

    title = field("mutopiatitle", "title")
    composer = field("mutopiacomposer", "composer")
    opus = field("mutopiaopus", "opus")
    named = bool(field("mutopiatitle", "mutopiainstrument"))
    return {
        "licence": field("license", "licence", "mutopiacopyright", "copyright"),  # older files
        "composer": composer,
        "title": title,
        "instruments": field("mutopiainstrument", "instrument"),
        "work": "|".join((composer, opus, title)).lower() if named else "",
        "credit": f"typeset by {maintainer}" if (maintainer := field("maintainer")) else "",
    }


def lilypond_main(path: Path) -> Path:
    """The file LilyPond should read for the piece whose header `path` holds: itself when it
    has a `\\score` (or `\\book`), else a file beside it that includes it (Mutopia's
    `header.ly` pattern), else itself."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if re.search(r"\\(score|book)\b", text):
        return path
    include = re.compile(r'\\include\s+"(\./)?' + re.escape(path.name) + '"')
    for sibling in sorted(path.parent.glob("*.ly")):
        small = sibling != path and sibling.stat().st_size <= 4 * 2**20
        if small and include.search(sibling.read_text(encoding="utf-8", errors="replace")):
            return sibling
    return path


def lilypond_to_midi(path: Path, out: Path, name: str) -> list[Path]:
    """`out/<name>.mid` (and `<name>-2.mid`... for further scores) from the LilyPond file at
    `path`, via a copy of its folder updated by convert-ly; the files written, in score order.
    Raises ValueError with LilyPond's last error line when it writes no MIDI."""
    program, convert = lilypond_executable(), lilypond_executable("convert-ly")
    if program is None or convert is None:
        raise ValueError("LilyPond is not installed: pip install lilypond")
    with tempfile.TemporaryDirectory(prefix="lstm-music-ly-") as work:
        copy = Path(work) / "piece"
        shutil.copytree(path.parent, copy, symlinks=False, ignore=_only_sources)
        for source in _to_update(copy, path.name):
            _run([convert, "--edit", "--no-backup", "--loglevel=ERROR", source.name], source.parent)
        result = _run([program, "--loglevel=ERROR", "-dno-print-pages", "-o", "out", path.name],
                      copy)  # fmt: skip
        made = sorted(copy.glob("out*.mid*"), key=_score_number)
        if not made:
            last = (result.stderr.strip().splitlines() or ["no \\midi block"])[-1]
            raise ValueError(f"LilyPond wrote no MIDI: {last[:200]}")
        written = []
        for number, midi in enumerate(made, start=1):
            target = out / (f"{name}.mid" if number == 1 else f"{name}-{number}.mid")
            shutil.move(str(midi), target)
            written.append(target)
        return written


def _to_update(copy: Path, main: str, most: int = 40) -> list[Path]:
    """The main file and what it may include (.ily files, .ly files in sub-folders, and sibling
    .ly files when there are few: a folder of many pieces updates only the one converted)."""
    found = [p for p in sorted(copy.rglob("*.ly*")) if p.name != main or p.parent != copy]
    return [copy / main, *found[:most]]


def _run(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, errors="replace",
                          timeout=LILYPOND_SECONDS, check=False)  # fmt: skip


def _only_sources(folder: str, names: list[str]) -> list[str]:
    """copytree's filter: LilyPond sources and sub-folders only (no PDFs, images, MIDI)."""
    return [n for n in names if not n.endswith((".ly", ".ily", ".lyi")) and
            not (Path(folder) / n).is_dir()]  # fmt: skip


def _score_number(path: Path) -> int:
    """out.midi -> 0, out-1.midi -> 1, out-2.midi -> 2: LilyPond's order of the scores."""
    found = re.search(r"-(\d+)\.midi?$", path.name)
    return int(found.group(1)) if found else 0


__all__ = ["lilypond_executable", "lilypond_header", "lilypond_main", "lilypond_to_midi"]
