"""`prepare`: MIDI files and folders -> a token corpus on disk.

The parent process finds and hashes files, reuses the tokens of files unchanged since the last
run, and farms the rest out to isolated worker processes (see `workers.py`), so a file that
crashes or hangs the parser costs only itself. The corpus is written to a temporary folder and
renamed into place: an existing corpus is never left half-overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

from lstm_music import __version__
from lstm_music.config import to_dict
from lstm_music.corpus import Corpus, CorpusError, PieceInfo, build_vocabulary, write_corpus
from lstm_music.discover import FoundFile, assign_splits, find_midi_files
from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import swap_in
from lstm_music.midi import (
    MidiError,
    SkipFile,
    TrackOptions,
    duration_seconds,
    load_pieces,
    note_count,
)
from lstm_music.tokenizers import DEFAULT_TOKENIZER, Tokenizer, get_tokenizer, tokenizer_from_config

MAX_FILE_BYTES = 64 * 1024 * 1024  # the largest MIDI files in public collections are ~10 MB


@dataclass
class PrepareConfig:
    """Everything `prepare` needs; saved resolved in the corpus (corpus.json)."""

    inputs: list[str]
    out: str
    tokenizer: str = DEFAULT_TOKENIZER
    grid_step: float = 0.25  # quarter notes per step, for --tokenizer grid
    tracks: str = "merge"
    programs: list[int] = field(default_factory=list)
    drums: bool = False
    max_notes: int = 200_000
    max_silence: float = 8.0  # quarter notes
    max_tokens: int = 1_000_000  # per piece
    valid_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    workers: int = 0  # 0 = one per CPU core
    file_timeout: float = 60.0  # seconds per file
    max_memory_mb: int = 2048  # per worker, on top of its start-up size

    def __post_init__(self) -> None:
        self.track_options()  # validates the track settings now, not after the files are read
        for name in ("workers", "max_tokens", "max_memory_mb"):
            if getattr(self, name) < 0:
                raise LstmMusicError(f"--{name.replace('_', '-')} must not be negative")
        if self.file_timeout <= 0:
            raise LstmMusicError("--file-timeout must be positive")

    def track_options(self) -> TrackOptions:
        return TrackOptions(
            self.tracks, tuple(self.programs), self.drums, self.max_notes, self.max_silence
        )

    def make_tokenizer(self) -> Tokenizer:
        params = {"step": self.grid_step} if self.tokenizer == "grid" else {}
        return get_tokenizer(self.tokenizer, **params)


@dataclass
class PrepareResult:
    """What `prepare` did: the corpus and per-status file counts, for the summary."""

    corpus: Corpus
    counts: dict[str, int]
    reused: int
    seconds: float
    problems: list[dict[str, Any]]


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
            for label, score in load_pieces(data, self.options):
                tokens = self._tokenizer.encode(score)
                if len(tokens) > self.max_tokens:
                    raise SkipFile(f"{len(tokens)} tokens, over --max-tokens {self.max_tokens}")
                if tokens:
                    seconds, notes = duration_seconds(score), note_count(score)
                    pieces.append(
                        {"label": label, "tokens": tokens, "seconds": seconds, "notes": notes}
                    )
        except SkipFile as skip:
            return {"status": "skipped", "reason": str(skip)}
        if not pieces:
            return {"status": "skipped", "reason": "no tokens"}
        return {"status": "ok", "pieces": pieces}


def _settings_key(tokenizer: Tokenizer, config: PrepareConfig) -> str:
    """Hash of everything that changes a file's tokens; cached tokens need the same key."""
    relevant = {
        "tokenizer": tokenizer.to_config(),
        "tracks": to_dict(config.track_options()),
        "max_tokens": config.max_tokens,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _cached_results(out: Path, key: str) -> dict[str, dict[str, Any]]:
    """Per content hash, the result an earlier run into `out` got with the same settings."""
    try:
        old = Corpus.load(out)
    except CorpusError:
        return {}
    if old.meta.get("settings_key") != key:
        return {}
    pieces_by_source: dict[str, list[dict[str, Any]]] = {}
    for piece in old.pieces:
        pieces_by_source.setdefault(piece.source, []).append(
            {
                "label": piece.info.label,
                "tokens": piece.tokens,
                "seconds": piece.info.seconds,
                "notes": piece.info.notes,
            }
        )
    cache = {}
    for entry in old.manifest.get("files", []):
        if entry["status"] == "ok" and entry["source"] in pieces_by_source:
            cache[entry["sha256"]] = {"status": "ok", "pieces": pieces_by_source[entry["source"]]}
        elif entry["status"] == "skipped":
            cache[entry["sha256"]] = {"status": "skipped", "reason": entry["reason"]}
    return cache


def _read_inputs(files: list[FoundFile]) -> tuple[dict[int, bytes], dict[int, dict[str, Any]]]:
    """File bytes by index, and immediate results for files that can't even be read."""
    data, results = {}, {}
    for index, found in enumerate(files):
        try:
            stat = found.path.stat()
            if not S_ISREG(stat.st_mode):  # a FIFO or device would block or never end
                raise SkipFile("not a regular file")
            if stat.st_size > MAX_FILE_BYTES:
                raise SkipFile(f"larger than {MAX_FILE_BYTES // 2**20} MB")
            data[index] = found.path.read_bytes()
        except SkipFile as skip:
            results[index] = {"status": "skipped", "reason": str(skip)}
        except OSError as error:
            results[index] = {"status": "failed", "reason": f"unreadable: {error.strerror}"}
    return data, results


def _tokenize(
    data: dict[int, bytes], cache: dict[str, dict], job: TokenizeJob, config: PrepareConfig, bar
) -> tuple[dict[int, dict[str, Any]], dict[int, str], int]:
    """Results by file index (from the cache or the workers), content hashes, count reused."""
    from lstm_music.workers import IsolatedPool

    hashes = {i: hashlib.sha256(raw).hexdigest() for i, raw in data.items()}
    results = {i: cache[h] for i, h in hashes.items() if h in cache}
    bar.update(len(results))
    todo = [(i, data[i]) for i in sorted(data) if i not in results]
    if todo:
        workers = min(len(todo), config.workers or os.cpu_count() or 1)
        pool = IsolatedPool(job, workers, config.file_timeout, config.max_memory_mb)
        for outcome in pool.imap_unordered(todo):
            failed = {"status": "failed", "reason": outcome.reason}
            results[outcome.key] = outcome.result if outcome.ok else failed
            bar.update(1)
    return results, hashes, len(data) - len(todo)


def prepare(config: PrepareConfig, progress: bool = True) -> PrepareResult:
    """Tokenize every MIDI file under `config.inputs` into a corpus at `config.out`."""
    from tqdm import tqdm

    started = time.perf_counter()
    out = Path(config.out).expanduser()
    _check_out(out)
    tokenizer = config.make_tokenizer()
    options = config.track_options()
    files, notes = find_midi_files(config.inputs)
    if not files:
        raise LstmMusicError(f"no MIDI files (.mid, .midi) found in {', '.join(config.inputs)}")
    key = _settings_key(tokenizer, config)
    job = TokenizeJob(tokenizer.to_config(), options, config.max_tokens)
    with tqdm(total=len(files), unit="file", desc="prepare", disable=not progress) as bar:
        data, results = _read_inputs(files)
        bar.update(len(results))
        done, hashes, reused = _tokenize(data, _cached_results(out, key), job, config, bar)
        results.update(done)
    manifest_files, pieces = _collect(files, results, hashes, config)
    if not pieces:
        raise LstmMusicError(_nothing_usable(manifest_files))
    vocabulary = build_vocabulary(tokenizer.base_vocabulary(), (t for _, t in pieces))
    meta = {
        "tokenizer": tokenizer.to_config(),
        "vocabulary": vocabulary,
        "settings_key": key,
        "config": to_dict(config),
        "lstm_music_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest = {
        "inputs": [str(Path(i).resolve()) for i in config.inputs],
        "notes": notes,
        "files": manifest_files,
    }
    _write_atomically(out, meta, pieces, manifest)
    statuses = [f["status"] for f in manifest_files]
    counts = {status: statuses.count(status) for status in ("ok", "skipped", "failed")}
    problems = [f for f in manifest_files if f["status"] != "ok"]
    seconds = time.perf_counter() - started
    return PrepareResult(Corpus.load(out), counts, reused, seconds, problems)


def _collect(files, results, hashes, config) -> tuple[list[dict], list[tuple[PieceInfo, list]]]:
    """Manifest entries for every file and (PieceInfo, tokens) for every usable piece."""
    ok_sources = [f.source for i, f in enumerate(files) if results[i]["status"] == "ok"]
    splits = assign_splits(ok_sources, config.valid_fraction, config.test_fraction, config.seed)
    manifest, pieces = [], []
    for index, found in enumerate(files):
        result = results[index]
        entry = {
            "source": found.source,
            "sha256": hashes.get(index, ""),
            "status": result["status"],
            "reason": result.get("reason", ""),
            "pieces": 0,
        }
        for piece in result.get("pieces", []):
            split = found.folder_split or splits[found.source]
            info = PieceInfo(
                found.source, split, 0, 0, piece["seconds"], piece["notes"], piece["label"]
            )
            pieces.append((info, piece["tokens"]))
            entry["pieces"] += 1
        manifest.append(entry)
    return manifest, pieces


def _nothing_usable(manifest_files: list[dict]) -> str:
    reasons: dict[str, int] = {}
    for entry in manifest_files:
        reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    top = "; ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items(), key=lambda r: -r[1]))
    return f"no usable piece in {len(manifest_files)} MIDI file(s): {top}"


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a corpus: `--out ~/Music` must not wipe music."""
    is_corpus = (out / "corpus.json").exists()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_corpus)):
        raise LstmMusicError(
            f"{out} exists and is not an lstm-music corpus; choose a new or empty --out folder"
        )


def _write_atomically(out: Path, meta, pieces, manifest) -> None:
    """Write into a sibling temporary folder, then swap it in with renames."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_corpus(temporary, meta, pieces, manifest)
        swap_in(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


__all__ = ["MidiError", "PrepareConfig", "PrepareResult", "prepare"]
