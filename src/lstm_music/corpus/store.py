"""The token corpus on disk, and reading it back.

A corpus is a folder:

    corpus.json    format version, tokenizer config, vocabulary, the options that made it
    tokens.npy     every token id of every piece, one flat integer array (memory-mapped on load)
    pieces.json    per piece: source file, track label, split, offset and length in tokens.npy
    manifest.json  every input file: content hash and status (ok / skipped / failed, and why)

    tokens.npy:  | piece 0 ........ | piece 1 ..... | piece 2 ............ |
                 ^offset 0          ^offset 0+len0  ^ ...

Ids 0-3 are special tokens shared by all tokenizers; the tokenizer's own fixed tokens follow,
then tokens seen only in the data, most frequent first (as the seed numbers them). Loading
checks that every id is below the vocabulary size, so a damaged file fails here in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import require_regular_file

FORMAT_NAME = "lstm-music-corpus"
FORMAT_VERSION = 1
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
SPLITS = ("train", "valid", "test")


class CorpusError(LstmMusicError):
    """A corpus folder that is missing, damaged or of another format."""


def compact_tokens(tokens: list[str]) -> tuple[list[str], np.ndarray]:
    """A piece as its distinct tokens (by first appearance) and each token's index among them.

    Workers send this rather than a string per token: a smaller message, and the parent looks
    up a few hundred distinct tokens instead of every token.
    """
    index: dict[str, int] = {}
    lookup = (index.setdefault(token, len(index)) for token in tokens)
    codes = np.fromiter(lookup, dtype=np.uint32, count=len(tokens))
    return list(index), codes


class TokenSink:
    """Pieces' tokens streamed to disk as ids while they arrive; the vocabulary grows with them.

    `prepare` gets results in completion order and must not hold them all (a Python string per
    token costs ~90 bytes): each piece's ids go to `ids.tmp` (uint32) at once, with a count and
    the first position of every token. `finish` then numbers the vocabulary as before (specials,
    the tokenizer's fixed tokens, data tokens by descending count, ties by first appearance in
    file order) and writes tokens.npy piece by piece in the order asked for.
    """

    def __init__(self, folder: Path, base: Iterable[str]) -> None:
        self.tokens: list[str] = []
        self.token_to_id: dict[str, int] = {}
        self.ids_of([*SPECIAL_TOKENS, *base])
        self.fixed = len(self.tokens)  # ids below this keep their place in the vocabulary
        self.counts = np.zeros(max(1024, 2 * self.fixed), dtype=np.int64)
        self.first = np.full(len(self.counts), np.iinfo(np.int64).max, dtype=np.int64)
        self.path = folder / "ids.tmp"
        self.file = open(self.path, "wb")  # noqa: SIM115 (closed by finish / close)
        self.length = 0  # ids written so far

    def ids_of(self, tokens: list[str]) -> np.ndarray:
        """Temporary ids of `tokens`, adding new tokens to the vocabulary."""
        lookup = self.token_to_id
        for token in tokens:
            if token not in lookup:
                lookup[token] = len(self.tokens)
                self.tokens.append(token)
        return np.fromiter(map(lookup.__getitem__, tokens), dtype=np.uint32, count=len(tokens))

    def add_tokens(self, distinct: list[str], codes: np.ndarray, order: int) -> tuple[int, int]:
        """`add` for a piece as `compact_tokens` gives it: only distinct tokens are looked up."""
        return self.add_coded(self.ids_of(distinct), codes, order)

    def translate(self, vocabulary: list[str]) -> np.ndarray:
        """Temporary ids for the ids of another corpus whose vocabulary is `vocabulary`."""
        return self.ids_of(vocabulary)

    def add(self, ids: np.ndarray, order: int) -> tuple[int, int]:
        """Append one piece's temporary ids; (offset, length) in ids.tmp.

        `order` ranks the piece's first id in file order (for ties in the vocabulary).
        """
        ids = np.asarray(ids, dtype=np.uint32)
        unique, inverse = np.unique(ids, return_inverse=True)
        return self.add_coded(unique, inverse.astype(np.uint32), order)

    def add_coded(self, distinct: np.ndarray, codes: np.ndarray, order: int) -> tuple[int, int]:
        """`add` for a piece given as `distinct[codes]` (what `compact_tokens` makes)."""
        distinct = np.asarray(distinct, dtype=np.uint32)
        if len(self.tokens) > len(self.counts):
            grow = len(self.tokens) * 2 - len(self.counts)
            self.counts = np.append(self.counts, np.zeros(grow, dtype=np.int64))
            self.first = np.append(self.first, np.full(grow, np.iinfo(np.int64).max))
        self.counts[distinct] += np.bincount(codes, minlength=len(distinct))
        if (self.first[distinct] > order).any():  # some token not seen in an earlier file
            where = np.full(len(distinct), len(codes), dtype=np.int64)
            np.minimum.at(where, codes, np.arange(len(codes)))  # first position of each code
            self.first[distinct] = np.minimum(self.first[distinct], order + where)
        ids = distinct[codes]
        self.file.write(ids.tobytes())
        offset, self.length = self.length, self.length + len(ids)
        return offset, len(ids)

    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """The final vocabulary, and the final id of each temporary id."""
        count = len(self.tokens)
        data = np.arange(self.fixed, count)
        data = data[self.counts[data] > 0]  # another corpus's tokens that no piece here uses
        data = data[np.lexsort((self.first[data], -self.counts[data]))]
        remap = np.arange(count, dtype=np.uint32)
        remap[data] = np.arange(self.fixed, self.fixed + len(data), dtype=np.uint32)
        return self.tokens[: self.fixed] + [self.tokens[i] for i in data.tolist()], remap

    def finish(self, folder: Path, spans: Iterable[tuple[int, int]]) -> list[str]:
        """Write folder/tokens.npy: the (offset, length) spans of ids.tmp, in order, renumbered."""
        self.file.close()
        vocabulary, remap = self.vocabulary()
        spans = list(spans)
        dtype = np.uint16 if len(vocabulary) <= np.iinfo(np.uint16).max else np.uint32
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
        header["shape"] = (sum(length for _, length in spans),)
        with open(self.path, "rb") as source, open(folder / "tokens.npy", "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            for offset, length in spans:
                source.seek(offset * 4)
                ids = np.fromfile(source, dtype=np.uint32, count=length)
                out.write(remap[ids].astype(dtype).tobytes())
        self.path.unlink()
        return vocabulary

    def close(self) -> None:
        self.file.close()


@dataclass
class PieceInfo:
    """Metadata of one piece, as stored in pieces.json."""

    source: str  # input file, relative to the input folder(s)
    split: str  # train / valid / test
    offset: int  # first token's index in tokens.npy
    length: int  # number of tokens
    seconds: float = 0.0  # duration, following the file's tempo map
    notes: int = 0
    label: str = ""  # which track(s), for --tracks separate


@dataclass
class CorpusPiece:
    """One piece of a loaded corpus; `ids` is a view into the memory-mapped token array."""

    info: PieceInfo
    corpus: Corpus = field(repr=False)

    @property
    def source(self) -> str:
        return self.info.source

    @property
    def split(self) -> str:
        return self.info.split

    @property
    def ids(self) -> np.ndarray:
        """Token ids, shape (length,)."""
        return self.corpus.ids[self.info.offset : self.info.offset + self.info.length]

    @property
    def tokens(self) -> list[str]:
        vocabulary = self.corpus.vocabulary
        return [vocabulary[i] for i in self.ids.tolist()]


@dataclass
class Corpus:
    """A prepared corpus: `Corpus.load(path)`, then `.pieces`, `.split("valid")`, `.vocabulary`."""

    path: Path
    meta: dict[str, Any]
    infos: list[PieceInfo]
    ids: np.ndarray  # (total_tokens,) all pieces back to back
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Corpus:
        path = Path(path)
        meta = _read_json(path, "corpus.json")
        if meta.get("format") != FORMAT_NAME:
            raise CorpusError(f"{path} is not an lstm-music corpus (corpus.json has no format tag)")
        if meta.get("version") != FORMAT_VERSION:
            raise CorpusError(
                f"{path} is corpus format {meta.get('version')}, this lstm-music reads "
                f"{FORMAT_VERSION}: re-run `lstm-music prepare`"
            )
        infos = _piece_infos(path)
        ids = _token_ids(path / "tokens.npy", len(meta.get("vocabulary") or ()))
        if infos and max(i.offset + i.length for i in infos) > len(ids):
            raise CorpusError(f"{path / 'tokens.npy'} is shorter than pieces.json says: damaged")
        return cls(path, meta, infos, ids, _read_json(path, "manifest.json"))

    @cached_property
    def pieces(self) -> list[CorpusPiece]:
        return [CorpusPiece(info, self) for info in self.infos]

    def split(self, name: str) -> list[CorpusPiece]:
        if name not in SPLITS:
            raise CorpusError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return [piece for piece in self.pieces if piece.split == name]

    @property
    def vocabulary(self) -> list[str]:
        return self.meta["vocabulary"]

    @cached_property
    def token_to_id(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.vocabulary)}

    @property
    def tokenizer_config(self) -> dict[str, Any]:
        return self.meta["tokenizer"]

    def tokenizer(self):  # -> Tokenizer (imported lazily: tokenizers pull in miditok)
        from lstm_music.tokens.stored import stored_tokenizer

        return stored_tokenizer(self.tokenizer_config)

    def token_counts(self) -> np.ndarray:
        """How often each id of the vocabulary occurs in the corpus, shape (vocabulary size,)."""
        counts = np.zeros(len(self.vocabulary), dtype=np.int64)
        for part in _chunks(self.path / "tokens.npy", self.ids):
            counts += np.bincount(part, minlength=len(counts))
        return counts

    def summary(self) -> dict[str, Any]:
        """Counts for `corpus info`: pieces and tokens per split, vocabulary, bad files, and the
        instruments (see `corpus.contents`)."""
        from lstm_music.corpus.contents import corpus_instruments, merged_tracks

        splits = {
            name: {
                "pieces": sum(1 for i in self.infos if i.split == name),
                "tokens": sum(i.length for i in self.infos if i.split == name),
                "hours": sum(i.seconds for i in self.infos if i.split == name) / 3600,
            }
            for name in SPLITS
        }
        files = self.manifest.get("files", [])
        return {
            "path": str(self.path),
            "tokenizer": self.tokenizer_config.get("tokenizer"),
            "vocabulary_size": len(self.vocabulary),
            "splits": splits,
            "files": len(files),
            "problems": [f for f in files if f["status"] != "ok"],
            "tracks": self.meta.get("config", {}).get("tracks", "merge"),
            "instruments": corpus_instruments(self.vocabulary, self.token_counts),
            "merged_tracks": merged_tracks(files),
        }


class Reuse:
    """What `prepare` can reuse of the corpus at `out` made with `key`: results by content hash.

    Only metadata is held; a reused piece's ids are read from the old corpus's memory-mapped
    tokens.npy when its file comes up, and renumbered for the new vocabulary.
    """

    def __init__(self, out: Path, key: str) -> None:
        self.corpus: Corpus | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self._translate: np.ndarray | None = None
        try:
            old = Corpus.load(out)
        except CorpusError:
            return
        if old.meta.get("settings_key") != key:
            return
        by_source: dict[str, list[PieceInfo]] = {}
        for info in old.infos:
            by_source.setdefault(info.source, []).append(info)
        for entry in old.manifest.get("files", []):
            if entry["status"] == "ok" and entry["source"] in by_source:
                trimmed = entry.get("trimmed", {})
                result = {"status": "ok", "infos": by_source[entry["source"]], "trimmed": trimmed}
                self.results[entry["sha256"]] = result
            elif entry["status"] == "skipped":
                self.results[entry["sha256"]] = {"status": "skipped", "reason": entry["reason"]}
        self.corpus = old

    def get(self, sha256: str, sink: TokenSink) -> dict[str, Any] | None:
        result = self.results.get(sha256)
        if result is None or "infos" not in result or self.corpus is None:
            return result
        if self._translate is None:
            self._translate = sink.translate(self.corpus.vocabulary)
        ids = self.corpus.ids
        pieces = [
            {
                "label": i.label,
                "seconds": i.seconds,
                "notes": i.notes,
                "ids": self._translate[ids[i.offset : i.offset + i.length]],
            }
            for i in result["infos"]
        ]
        return {"status": "ok", "pieces": pieces, "trimmed": result["trimmed"]}


def write_metadata(
    path: Path, meta: dict[str, Any], infos: list[PieceInfo], manifest: dict[str, Any]
) -> None:
    """Write the JSON files of a corpus whose tokens.npy `TokenSink.finish` has written."""
    _write_json(path / "pieces.json", [asdict(info) for info in infos])
    _write_json(path / "manifest.json", manifest)
    _write_json(path / "corpus.json", {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta})


def _piece_infos(path: Path) -> list[PieceInfo]:
    items = _read_json(path, "pieces.json")
    try:
        infos = [PieceInfo(**item) for item in items]
    except TypeError as error:
        raise CorpusError(f"{path / 'pieces.json'} is damaged: {error}") from error
    if any(i.offset < 0 or i.length < 0 for i in infos):
        raise CorpusError(f"{path / 'pieces.json'} is damaged: a negative offset or length")
    return infos


def _token_ids(file: Path, vocabulary_size: int) -> np.ndarray:
    """tokens.npy memory-mapped, checked: a flat unsigned array of ids below the vocabulary size.

    One pass over the ids (fast in NumPy) catches a corpus whose ids would index past the
    model's embedding table later, in the middle of training.
    """
    try:
        require_regular_file(file, str(file), CorpusError)
        if file.stat().st_size == 0:
            raise CorpusError(f"{file} is empty (0 bytes): re-run `lstm-music prepare`")
        ids = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise CorpusError(f"{file} is missing or damaged: {error}") from error
    if ids.ndim != 1 or ids.dtype.kind != "u":
        raise CorpusError(f"{file} is damaged: {ids.dtype} array of shape {ids.shape}")
    top = _largest(file, ids)
    if top >= vocabulary_size:
        raise CorpusError(
            f"{file} is damaged: token id {top} is outside the vocabulary of {vocabulary_size}"
        )
    return ids


def _largest(file: Path, ids: np.memmap) -> int:
    """The largest id (see `_chunks`)."""
    return max((int(part.max()) for part in _chunks(file, ids)), default=-1)


def _chunks(file: Path, ids: np.memmap, chunk: int = 1 << 22) -> Iterable[np.ndarray]:
    """The ids of tokens.npy, a few million at a time, read rather than through the map, which
    would keep every page of tokens.npy resident in this process (its RSS would grow with the
    corpus)."""
    with open(file, "rb") as stream:
        stream.seek(ids.offset)
        while len(part := np.fromfile(stream, dtype=ids.dtype, count=chunk)):
            yield part


def _read_json(folder: Path, name: str) -> Any:
    file = folder / name
    if not folder.is_dir():
        raise CorpusError(f"no corpus at {folder}; make one with `lstm-music prepare`")
    try:
        require_regular_file(file, str(file), CorpusError)  # a named pipe blocks forever
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CorpusError(f"{folder} is not a complete corpus: {name} is missing") from error
    except (OSError, ValueError) as error:
        raise CorpusError(f"{file} is damaged: {error}") from error


def _write_json(file: Path, data: Any) -> None:
    with open(file, "w", encoding="utf-8") as stream:  # streamed: no string of the whole file
        json.dump(data, stream, indent=1, ensure_ascii=False)
        stream.write("\n")
