"""`prepare`: MIDI files and folders -> a token corpus on disk.

The parent process finds and hashes files, reuses the tokens of files unchanged since the last
run, and farms the rest out to isolated worker processes (see `workers.py`), so a file that
crashes or hangs the parser costs only itself. The corpus is written to a temporary folder and
renamed into place: an existing corpus is never left half-overwritten.

Memory stays flat as the corpus grows: each piece's ids go to disk as its result arrives
(`corpus.TokenSink`), reused pieces are read from the old corpus one at a time, and the parent
keeps only per-file metadata. 50,000 small files: 2.7 GB before, 251 MB now (RESULTS.md).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lstm_music import __version__
from lstm_music.corpus.discover import FoundFile, assign_splits, find_midi_files
from lstm_music.corpus.prepare_report import PrepareResult, nothing_usable, prepare_result
from lstm_music.corpus.store import (
    PieceInfo,
    Reuse,
    TokenSink,
    compact_tokens,
    write_metadata,
)
from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.fsutil import not_regular, swap_in
from lstm_music.settings import Bound, check_bounds, to_dict
from lstm_music.tokens import (
    DEFAULT_TOKENIZER,
    Tokenizer,
    check_controls,
    check_instruments,
    tokenizer_class,
    tokenizer_for_tracks,
    tokenizer_from_config,
)
from lstm_music.tokens.controls import parse_controls, with_corpus_levels
from lstm_music.tokens.instruments import DEFAULT_MAX_INSTRUMENTS, INSTRUMENTS_MODE
from lstm_music.tokens.midi import (
    MidiError,
    SkipFile,
    TrackOptions,
    duration_seconds,
    note_count,
    read_pieces,
)

MAX_FILE_BYTES = 64 * 1024 * 1024  # the largest MIDI files in public collections are ~10 MB
READER_VERSION = 3  # bump when reading MIDI changes tokens: cached tokens are then redone


# every number's range, in one place (the CLI refuses by these; 0 workers: one per core)
PREPARE_BOUNDS: dict[str, Bound] = {
    "max_notes": Bound(1, 10**8, integer=True),
    "max_silence": Bound(0, 10**6),  # quarter notes
    "max_tokens": Bound(0, 10**9, integer=True),
    "valid_fraction": Bound(0, 1),  # the split checks the rest (below 1 together)
    "test_fraction": Bound(0, 1),
    "seed": Bound(0, 2**63 - 1, integer=True),
    "workers": Bound(0, 1024, integer=True),
    "file_timeout": Bound(0, 86_400, above=True),
    "max_memory_mb": Bound(0, 10**7, integer=True),
}


@dataclass
class PrepareConfig:
    """Everything `prepare` needs; saved resolved in the corpus (corpus.json)."""

    inputs: list[str]
    out: str
    tokenizer: str = DEFAULT_TOKENIZER
    grid_step: float = 0.25  # quarter notes per step, for the grid tokenizer
    tracks: str = "merge"
    programs: list[int] = field(default_factory=list)
    drums: bool = False
    max_instruments: int = DEFAULT_MAX_INSTRUMENTS  # per piece, for tracks "instruments"
    max_notes: int = 200_000
    max_silence: float = 8.0  # quarter notes
    max_tokens: int = 1_000_000  # per piece
    valid_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    workers: int = 0  # 0 = one per CPU core
    file_timeout: float = 60.0  # seconds per file
    max_memory_mb: int = 2048  # per worker, on top of its start-up size
    # attribute controls to train with (tokens.controls): density, polyphony, key, or "default"
    controls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_bounds(self, PREPARE_BOUNDS)
        self.track_options()  # validates the track settings now, not after the files are read
        if self.tracks == INSTRUMENTS_MODE:
            check_instruments(self.tokenizer)
        self.controls = parse_controls(self.controls, self.tracks == INSTRUMENTS_MODE)
        if self.controls:
            check_controls(self.tokenizer)
        for name in ("workers", "max_tokens", "max_memory_mb"):
            if getattr(self, name) < 0:
                raise SettingError(f"{name} must not be negative", name)
        if self.file_timeout <= 0:
            raise SettingError("file_timeout must be positive", "file_timeout")

    def track_options(self) -> TrackOptions:
        timed = tokenizer_class(self.tokenizer).timed
        return TrackOptions(
            self.tracks, tuple(self.programs), self.drums, self.max_notes, self.max_silence, timed,
            max_instruments=self.max_instruments,
        )  # fmt: skip

    def make_tokenizer(self) -> Tokenizer:
        params = {"step": self.grid_step} if self.tokenizer == "grid" else {}
        return tokenizer_for_tracks(self.tokenizer, self.tracks, self.controls, **params)


class TokenizeJob:
    """Runs in a worker: one file's bytes -> its pieces' tokens (or a skip reason)."""

    def __init__(self, tokenizer_config: dict, options: TrackOptions, max_tokens: int) -> None:
        self.tokenizer_config, self.options, self.max_tokens = tokenizer_config, options, max_tokens
        self._tokenizer: Tokenizer | None = None

    def __call__(self, data: bytes) -> dict[str, Any]:
        if self._tokenizer is None:  # built once per worker process
            self._tokenizer = tokenizer_from_config(self.tokenizer_config)
        try:
            pieces = []
            loaded, trimmed = read_pieces(data, self.options)
            for label, score in loaded:
                tokens = self._tokenizer.encode(score)
                if len(tokens) > self.max_tokens:
                    raise SkipFile(f"{len(tokens)} tokens, over the cap of {self.max_tokens}")
                if tokens:
                    seconds, notes = duration_seconds(score), note_count(score)
                    piece = {"label": label, "seconds": seconds, "notes": notes}
                    pieces.append({**piece, "compact": compact_tokens(tokens)})
        except SkipFile as skip:
            return {"status": "skipped", "reason": str(skip)}
        if not pieces:
            return {"status": "skipped", "reason": "no tokens"}
        optional = ("dropped_instruments", "merged_tracks")  # said only when there are some
        said = {k: v for k, v in asdict(trimmed).items() if k not in optional or v}
        return {"status": "ok", "pieces": pieces, "trimmed": said}


def _settings_key(tokenizer: Tokenizer, config: PrepareConfig) -> str:
    """Hash of everything that changes a file's tokens; cached tokens need the same key."""
    tracks = to_dict(config.track_options())
    if config.tracks != INSTRUMENTS_MODE:  # the key of the other modes as before it existed
        del tracks["max_instruments"]
    relevant = {
        "tokenizer": tokenizer.to_config(),
        "tracks": tracks,
        "max_tokens": config.max_tokens,
        "reader": READER_VERSION,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _read_input(found: FoundFile) -> bytes:
    """One input file's bytes; SkipFile for what is not a regular file of sane size."""
    problem = not_regular(found.path)  # a FIFO or device would block or never end
    if problem:
        raise SkipFile(problem)
    if found.path.stat().st_size > MAX_FILE_BYTES:
        raise SkipFile(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    return found.path.read_bytes()


def _try_read(found: FoundFile) -> bytes | dict[str, Any]:
    """The file's bytes, or the result for a file that cannot be read."""
    try:
        return _read_input(found)
    except SkipFile as skip:
        return {"status": "skipped", "reason": str(skip)}
    except OSError as error:
        return {"status": "failed", "reason": f"unreadable: {error.strerror}"}


def _store(result: dict[str, Any], index: int, sink: TokenSink) -> dict[str, Any]:
    """What the parent keeps of one file's result: its pieces' tokens go to disk at once."""
    if result["status"] != "ok":
        return result
    pieces, position = [], index << 32  # ranks tokens in file order, for vocabulary ties
    for piece in result["pieces"]:
        if "ids" in piece:  # reused from the previous corpus
            span = sink.add(piece["ids"], position)
        else:
            span = sink.add_tokens(*piece["compact"], position)
        position += span[1]
        keep = ("label", "seconds", "notes")
        pieces.append({**{k: piece[k] for k in keep}, "span": span})
    return {"status": "ok", "pieces": pieces, "trimmed": result.get("trimmed", {})}


def _tokenize(
    files: list[FoundFile], reuse: Reuse, job: TokenizeJob, config: PrepareConfig, sink, bar
) -> tuple[dict[int, dict[str, Any]], dict[int, str], int]:
    """Records by file index (reused or from the workers), content hashes, count reused.

    Files are read twice, to hash them and again (from the OS cache) when a worker is free,
    so the parent never holds more than a few files' bytes.
    """
    from lstm_music.corpus.workers import IsolatedPool

    records: dict[int, dict[str, Any]] = {}
    hashes: dict[int, str] = {}
    todo = []
    for index, found in enumerate(files):
        raw = _try_read(found)
        if isinstance(raw, bytes):
            hashes[index] = hashlib.sha256(raw).hexdigest()
            cached = reuse.get(hashes[index], sink)
            if cached is None:
                todo.append(index)
                continue
            raw = cached
        records[index] = _store(raw, index, sink)
        bar.update(1)
    reused = len(hashes) - len(todo)
    if todo:
        workers = min(len(todo), config.workers or os.cpu_count() or 1)
        pool = IsolatedPool(job, workers, config.file_timeout, config.max_memory_mb)
        for outcome in pool.imap_unordered(_tasks(files, todo, hashes, records, bar)):
            failed = {"status": "failed", "reason": outcome.reason}
            records[outcome.key] = _store(
                outcome.result if outcome.ok else failed, outcome.key, sink
            )
            bar.update(1)
    return records, hashes, reused


def _tasks(files, todo, hashes, records, bar) -> Iterator[tuple[int, bytes]]:
    """(index, bytes) for each file to tokenize, read when a worker asks for it."""
    for index in todo:
        raw = _try_read(files[index])
        if isinstance(raw, bytes):
            hashes[index] = hashlib.sha256(raw).hexdigest()  # in case it changed meanwhile
            yield index, raw
        else:
            records[index] = raw
            bar.update(1)


def prepare(config: PrepareConfig, progress: bool = True) -> PrepareResult:
    """Tokenize every MIDI file under `config.inputs` into a corpus at `config.out`."""
    from tqdm import tqdm

    started = time.perf_counter()
    out = Path(config.out).expanduser()
    _check_out(out)
    tokenizer = config.make_tokenizer()
    files, notes = find_midi_files(config.inputs)
    if not files:
        raise LstmMusicError(f"no MIDI files (.mid, .midi) found in {', '.join(config.inputs)}")
    key = _settings_key(tokenizer, config)
    job = TokenizeJob(tokenizer.to_config(), config.track_options(), config.max_tokens)
    temporary = _temporary_folder(out)
    sink = None
    try:
        sink = TokenSink(temporary, tokenizer.base_vocabulary())
        with tqdm(total=len(files), unit="file", desc="prepare", disable=not progress) as bar:
            records, hashes, reused = _tokenize(files, Reuse(out, key), job, config, sink, bar)
        manifest_files, infos, spans = _collect(files, records, hashes, config)
        if not infos:
            raise LstmMusicError(nothing_usable(manifest_files))
        meta = {
            "tokenizer": _with_levels(tokenizer, sink),
            "vocabulary": sink.finish(temporary, spans),
            "settings_key": key,
            "config": _recorded(config),
            "lstm_music_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        inputs = [str(Path(i).resolve()) for i in config.inputs]
        manifest = {"inputs": inputs, "notes": notes, "files": manifest_files}
        write_metadata(temporary, meta, infos, manifest)
        swap_in(temporary, out)
    except BaseException as error:
        if sink is not None:
            sink.close()
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError):
            raise LstmMusicError(_write_failed(out, error)) from error
        raise
    fractions = (config.valid_fraction, config.test_fraction)
    seconds = time.perf_counter() - started
    return prepare_result(out, manifest_files, reused, seconds, fractions, files)


def _recorded(config: PrepareConfig) -> dict[str, Any]:
    """The settings as corpus.json keeps them; no controls left unsaid, as before they existed."""
    recorded = to_dict(config)
    if not recorded["controls"]:
        del recorded["controls"]
    return recorded


def _with_levels(tokenizer: Tokenizer, sink: TokenSink) -> dict[str, Any]:
    """The tokenizer config, with controls the corpus's note-density levels (low, medium, high),
    read off how often each density token was written (before `finish` renumbers them)."""
    config = tokenizer.to_config()
    if "controls" not in config.get("params", {}):
        return config
    counts = {token: int(sink.counts[i]) for i, token in enumerate(sink.tokens)
              if i < len(sink.counts)}  # fmt: skip
    return with_corpus_levels(config, counts)


def _temporary_folder(out: Path) -> Path:
    """A sibling of `out` to write the corpus into, renamed into place when complete."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise LstmMusicError(_write_failed(out, error)) from error


def _write_failed(out: Path, error: OSError) -> str:
    hint = " (disk full?)" if error.errno == errno.ENOSPC else ""
    kept = "; the corpus there is unchanged" if (out / "corpus.json").exists() else ""
    return f"cannot write the corpus {out}: {error.strerror or error}{hint}{kept}"


def _collect(files, records, hashes, config) -> tuple[list[dict], list[PieceInfo], list]:
    """Manifest entries for every file; PieceInfo and ids.tmp span of every usable piece.

    Splits are assigned only now that every file's status is known; pieces are laid out in
    file order whatever order the workers finished in.
    """
    ok_sources = [f.source for i, f in enumerate(files) if records[i]["status"] == "ok"]
    splits = assign_splits(ok_sources, config.valid_fraction, config.test_fraction, config.seed)
    manifest, infos, spans, offset = [], [], [], 0
    for index, found in enumerate(files):
        record = records.pop(index)  # the manifest entry replaces it
        entry = {
            "source": found.source,
            "sha256": hashes.get(index, ""),
            "status": record["status"],
            "reason": record.get("reason", ""),
            "pieces": 0,
        }
        if record["status"] == "ok":
            entry["trimmed"] = record.get("trimmed", {})
        for piece in record.get("pieces", []):
            split = found.folder_split or splits[found.source]
            length = piece["span"][1]
            info = PieceInfo(
                found.source,
                split,
                offset,
                length,
                piece["seconds"],
                piece["notes"],
                piece["label"],
            )
            infos.append(info)
            spans.append(piece["span"])
            offset += length
            entry["pieces"] += 1
        manifest.append(entry)
    return manifest, infos, spans


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a corpus: an output of ~/Music must not wipe music."""
    is_corpus = (out / "corpus.json").exists()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_corpus)):
        raise SettingError(
            f"{out} exists and is not an lstm-music corpus; choose a new or empty folder", "out"
        )


__all__ = ["MidiError", "PrepareConfig", "PrepareResult", "prepare"]
