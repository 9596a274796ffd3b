"""`corpus import NAME PATH`: a local clone of an openly licensed score collection, converted
to a MIDI folder in the cache with its provenance, the way built-in collections are.

The clone is read, never changed. Each score file's header is read first (at most
HEADER_BYTES): its licence as written, composer, title and instruments. Files are left out,
each with its reason, when their own licence statement is not one the source allows, when
they are too large, when `piano_only` asks for piano alone and they name other instruments,
and when they repeat a work already kept (Humdrum sources hold several editions of one work:
the first in path order is kept). The rest are converted by music21, one file per isolated
worker process with a time and memory limit (a converter that crashes or hangs loses that file
only), into `<cache>/corpora/import-NAME[-piano][-firstN]`, published whole or not at all.
Beside the MIDI files: `source.json` (per file: source path, composer, title, licence as
written, converter and version; the files left out and failed) and CREDITS.txt, which names
the source as its licence asks. A finished import is reused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstm_music.corpus.builtin import cache_root, publish
from lstm_music.corpus.builtin_registry import INSTALL_HINT, PIECE_MEMORY_MB, PIECE_TIMEOUT
from lstm_music.corpus.import_registry import (
    FILE_BYTES,
    HEADER_BYTES,
    IMPORT_FORMAT,
    STATEMENTS,
    ImportSource,
    get_source,
    licence_allowed,
)
from lstm_music.corpus.lilypond import (
    lilypond_executable,
    lilypond_header,
    lilypond_main,
    lilypond_to_midi,
)
from lstm_music.errors import LstmMusicError

NOT_INSTRUMENTS = {"empty", ""}  # Humdrum !!!AIN words that name no instrument
KEYBOARDS = {"harpsichord", "clavichord", "cembalo"}  # named beside a piano: played on it too
PART_NAMES = {"piano", "violino", "violin", "violoncello", "cello", "viola", "flauto", "voce",
              "canto", "orchestra"}  # fmt: skip


@dataclass(frozen=True)
class ScoreFile:
    """One score to convert: `name`.mid from `source` (relative to the clone)."""

    name: str
    source: str
    licence: str
    composer: str
    title: str
    instruments: str
    work: str  # what several editions of one work share ("" = unknown)
    credit: str = ""  # whom the file's licence asks to name (a typesetter), where it says


def import_folder(
    name: str,
    root: str | Path,
    limit: int | None = None,
    piano_only: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """The MIDI folder of collection `name` from the clone at `root` (converted now unless a
    finished import is cached) and its source.json record."""
    source = get_source(name)
    root = Path(root)
    if not root.is_dir():
        raise LstmMusicError(f"{root}: not a folder; clone it first: git clone {source.clone}")
    final = import_cache(name, limit, piano_only)
    cached = read_import(final)
    if cached is not None:
        return final, cached
    if final.exists():
        raise LstmMusicError(f"{final} exists but is not a finished import; delete it")
    kept, left_out = list_scores(source, root, piano_only)
    if not kept:
        raise LstmMusicError(f"{root}: no score of {source.name} to import ({source.pattern}, "
                             f"{len(left_out)} left out)")  # fmt: skip
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        record = convert_scores(source, root, kept[:limit], temporary, workers, progress)
        record.update(limit=limit, piano_only=piano_only, left_out=left_out, clone=str(root))
        text = json.dumps(record, indent=1, ensure_ascii=False)
        (temporary / "CREDITS.txt").write_text(credits(source, record), encoding="utf-8")
        (temporary / "source.json").write_text(text + "\n", encoding="utf-8")
        publish(temporary, final, read_import)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final, read_import(final) or record


def import_cache(name: str, limit: int | None = None, piano_only: bool = False) -> Path:
    """Where an import of `name` is (or will be); a slice or a piano-only one has its own."""
    if limit is not None and limit < 1:
        raise LstmMusicError("the file limit must be at least 1")
    label = (
        f"import-{name}" + ("-piano" if piano_only else "") + (f"-first{limit}" if limit else "")
    )
    return cache_root() / "corpora" / label


def read_import(folder: Path) -> dict[str, Any] | None:
    """The folder's source.json when it is a finished import of the current format."""
    try:
        record = json.loads((Path(folder) / "source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("import_format") == IMPORT_FORMAT
    return record if ok else None


def list_scores(
    source: ImportSource, root: Path, piano_only: bool
) -> tuple[list[ScoreFile], list[dict[str, str]]]:
    """The files to convert, in path order, and those left out with the reason."""
    kept, left_out, works, names = [], [], set(), set()
    for path in sorted(root.glob(source.pattern)):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file():
            continue
        header, why = read_header(path, source.score_format)
        if not why:
            part = named_part(path, source)  # one part of a chamber work: its own "work"
            header["work"] += f"|{part}" if part and header["work"] else ""
            header["instruments"] = header["instruments"] or part or source.instruments
        if not why and source.score_format == "lilypond" and not header["work"]:
            continue  # a part another file includes, not a piece
        if not why and source.licence_required and not header["licence"]:
            why = "it states no licence"
        if not why and not licence_allowed(source, header["licence"]):
            why = f"its licence is not {source.licence}: {header['licence']!r}"
        if not why and piano_only and not is_piano(header["instruments"]):
            why = f"not for piano alone ({header['instruments'] or 'instruments not stated'})"
        if not why and header["work"] and header["work"] in works:
            why = "another edition of a work already kept"
        if why:
            left_out.append({"source": relative, "reason": why})
            continue
        works.add(header["work"])
        if source.score_format == "lilypond":  # the header may sit in a file the piece includes
            relative = lilypond_main(path).relative_to(root).as_posix()
            path = root / relative
            name_from = path.parent.name if path.stem == "header" else path.stem
        else:
            name_from = path.stem
        name = _unique(_slug(name_from), names)
        kept.append(ScoreFile(name, relative, **header))
    return kept, left_out


def read_header(path: Path, score_format: str) -> tuple[dict[str, str], str]:
    """The file's licence, composer, title, instruments and work, or a reason to leave it out
    (too large, unreadable); only the first HEADER_BYTES of it are read."""
    try:
        if path.stat().st_size > FILE_BYTES:
            return {}, f"larger than {FILE_BYTES // 2**20} MB"
        if score_format == "musicxml":
            return _musicxml_header(path), ""
        with path.open("rb") as file:
            text = file.read(HEADER_BYTES).decode("utf-8", "replace")
        return (lilypond_header(text) if score_format == "lilypond" else _humdrum_header(text)), ""
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        return {}, f"unreadable: {error}"


def _humdrum_header(text: str) -> dict[str, str]:
    """From `!!!KEY: value` reference records (the first of each key; every `YEM`)."""
    records: dict[str, str] = {}
    statements: list[str] = []
    for line in text.splitlines():
        if line.startswith("!!!") and ":" in line:
            key, value = line[3:].split(":", 1)
            if key.strip() == "YEM":  # every licence statement counts, not only the first
                statements.append(value.strip())
            records.setdefault(key.strip(), value.strip())
    work = [records.get(k, "").lower() for k in ("COM", "OPR", "OPS", "OTL", "OMV")]
    return {
        "licence": STATEMENTS.join(statements),
        "composer": records.get("COM", ""),
        "title": " / ".join(v for v in (records.get("OPR"), records.get("OTL")) if v),
        "instruments": records.get("AIN", ""),
        "work": "|".join(work) if any(work[1:]) else "",
    }


def _musicxml_header(path: Path) -> dict[str, str]:
    """From the score inside a compressed MusicXML file (or a plain .musicxml/.xml file)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            inner = [i for i in archive.infolist() if i.filename.endswith((".xml", ".musicxml"))
                     and not i.filename.startswith("META-INF")]  # fmt: skip
            if not inner or inner[0].file_size > FILE_BYTES:
                raise ValueError("no score inside, or one too large")
            with archive.open(inner[0]) as file:
                text = file.read(HEADER_BYTES).decode("utf-8", "replace")
    else:
        with path.open("rb") as file:
            text = file.read(HEADER_BYTES).decode("utf-8", "replace")

    def first(pattern: str) -> str:
        found = re.search(pattern, text, re.DOTALL)
        return re.sub(r"\s+", " ", found.group(1)).strip() if found else ""

    parts = re.findall(r"<part-name[^>]*>(.*?)</part-name>", text, re.DOTALL)
    return {
        "licence": STATEMENTS.join(
            re.sub(r"\s+", " ", r).strip()
            for r in re.findall(r"<rights[^>]*>(.*?)</rights>", text, re.DOTALL)
        ),
        "composer": first(r'<creator type="composer">(.*?)</creator>'),
        "title": first(r"<work-title>(.*?)</work-title>") or first(r"<movement-title>(.*?)<"),
        "instruments": " ".join(p.strip().lower() for p in parts),
        "work": "",
    }


def named_part(path: Path, source: ImportSource) -> str:
    """The instrument a file's name gives (`003-1-Sm-violoncello.krn`), where the source names
    its chamber parts that way; else ""."""
    last = path.stem.rsplit("-", 1)[-1].lower()
    return last if source.part_in_name and last in PART_NAMES else ""


def is_piano(instruments: str) -> bool:
    """Whether a file's instruments (Humdrum `1 piano`, `2 piano`, `1 forte` for fortepiano;
    MusicXML part names; Mutopia's "Harpsichord, Piano", keyboard music playable on either)
    are pianos alone."""
    words = [w for w in re.split(r"[^a-z]+", instruments.lower()) if w not in NOT_INSTRUMENTS]
    pianos = [w.startswith(("piano", "forte")) for w in words]
    return any(pianos) and all(p or w in KEYBOARDS for p, w in zip(pianos, words))


def _slug(text: str) -> str:
    from lstm_music.corpus.builtin_convert import _slug as slug

    return slug(text, keep=".")


def _unique(name: str, names: set[str]) -> str:
    candidate, number = name, 1
    while candidate in names:
        number += 1
        candidate = f"{name}-{number}"
    names.add(candidate)
    return candidate


class ImportJob:
    """Runs in a worker: one ScoreFile -> `out/<name>.mid`, or a reason it is skipped."""

    def __init__(self, root: str, out: str, score_format: str) -> None:
        self.root, self.out, self.score_format = root, out, score_format

    def __call__(self, score_file: ScoreFile) -> dict[str, Any]:
        path = Path(self.root) / score_file.source
        if self.score_format == "lilypond":
            return _lilypond_job(path, Path(self.out), score_file.name)
        import contextlib
        import io
        import warnings

        from music21 import converter

        from lstm_music.corpus.builtin_convert import _write_midi

        target = Path(self.out) / f"{score_file.name}.mid"
        quiet = contextlib.redirect_stderr(io.StringIO())  # music21's parser warnings, per event
        with warnings.catch_warnings(), quiet:
            warnings.simplefilter("ignore")
            score = converter.parse(path, format=self.score_format, forceSource=True)
            notes = _write_midi(score, target)
        if notes == 0:
            target.unlink()
            return {"status": "skipped", "reason": "no notes"}
        return {"status": "ok", "notes": notes}


def _lilypond_job(path: Path, out: Path, name: str) -> dict[str, Any]:
    """LilyPond's MIDI files of one score file (one per `\\score`), those without notes
    removed: {"pieces": {file name: notes}}."""
    import symusic

    try:
        written = lilypond_to_midi(path, out, name)
    except ValueError as error:
        return {"status": "skipped", "reason": str(error)}
    pieces = {}
    for midi in written:
        notes = symusic.Score(str(midi)).note_num()
        if notes:
            pieces[midi.name] = notes
        else:
            midi.unlink()
    if not pieces:
        return {"status": "skipped", "reason": "no notes"}
    return {"status": "ok", "notes": sum(pieces.values()), "pieces": pieces}


def convert_scores(
    source: ImportSource, root: Path, files: list[ScoreFile], out: Path, workers, progress: bool
) -> dict[str, Any]:
    """Convert `files` into `out` in isolated workers; the source.json record."""
    from tqdm import tqdm

    from lstm_music.corpus.workers import IsolatedPool

    converter = converter_name(source.score_format)
    started = time.perf_counter()
    job = ImportJob(str(root), str(out), source.score_format)
    pool = IsolatedPool(job, min(len(files), workers or os.cpu_count() or 1), PIECE_TIMEOUT,
                        PIECE_MEMORY_MB)  # fmt: skip
    by_name = {f.name: f for f in files}
    pieces, failures = [], []
    with tqdm(total=len(files), unit="file", desc=source.name, disable=not progress) as bar:
        for outcome in pool.imap_unordered((f.name, f) for f in files):
            entry = {"piece": f"{outcome.key}.mid", **asdict(by_name[outcome.key])}
            result = outcome.result if outcome.ok else {"status": "failed"}
            if result["status"] == "ok":
                written = result.get("pieces") or {entry["piece"]: result["notes"]}
                pieces += [{**entry, "piece": p, "notes": n} for p, n in written.items()]
            else:
                failures.append({**entry, "reason": result.get("reason") or outcome.reason})
            bar.update(1)
    if not pieces:
        first = (failures or [{"reason": "no files"}])[0]["reason"]
        raise LstmMusicError(f"{source.name}: no file converted (first problem: {first})")
    return {
        "import_format": IMPORT_FORMAT, "collection": source.name, "title": source.title,
        "licence": source.licence, "credit": source.credit, "clone_from": source.clone,
        "converter": converter, "count": len(pieces),
        "attempted": len(files), "pieces": sorted(pieces, key=lambda p: p["piece"]),
        "failures": sorted(failures, key=lambda p: p["piece"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def converter_name(score_format: str) -> str:
    """The converter and its version, for source.json; refused when it is not installed."""
    if score_format == "lilypond":
        program = lilypond_executable()
        if program is None:
            raise LstmMusicError("importing LilyPond scores needs LilyPond: pip install lilypond")
        result = subprocess.run([program, "--version"], capture_output=True, text=True,
                                timeout=60, check=False)  # fmt: skip
        words = (result.stdout.splitlines() or ["GNU LilyPond"])[0].split()
        return " ".join(words[1:3]) if len(words) >= 3 else "LilyPond"
    try:
        import music21
    except ImportError:
        raise LstmMusicError(f"importing scores needs music21: {INSTALL_HINT}") from None
    return f"music21 {music21.__version__}"


def credits(source: ImportSource, record: dict[str, Any]) -> str:
    """CREDITS.txt: the attribution, then each file with its composer, title and licence."""
    lines = [f"{source.credit}", f"Converted to MIDI with {record['converter']}.", ""]
    for piece in record["pieces"]:
        details = " - ".join(x for x in (piece["composer"], piece["title"], piece.get("credit"))
                             if x)  # fmt: skip
        licence = piece["licence"] or f"{source.licence} (the repository's)"
        lines.append(f"{piece['piece']}\t{piece['source']}\t{details}\t{licence}")
    return "\n".join(lines) + "\n"


def summary(record: dict[str, Any], folder: Path) -> str:
    return (
        f"{record['collection']}: {record['count']} files converted, "
        f"{len(record['left_out'])} left out, {len(record['failures'])} failed "
        f"in {record['seconds']:.0f} s -> {folder}"
    )


__all__ = ["ScoreFile", "import_cache", "import_folder", "is_piano", "list_scores", "summary"]
