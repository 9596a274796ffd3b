"""The token corpus on disk, and reading it back.

A corpus is a folder:

    corpus.json    format version, tokenizer config, vocabulary, the options that made it
    tokens.npy     every token id of every piece, one flat integer array (memory-mapped on load)
    pieces.json    per piece: source file, track label, split, offset and length in tokens.npy
    manifest.json  every input file: content hash and status (ok / skipped / failed, and why)

    tokens.npy:  | piece 0 ........ | piece 1 ..... | piece 2 ............ |
                 ^offset 0          ^offset 0+len0  ^ ...

Ids 0-3 are special tokens shared by all tokenizers; the tokenizer's own fixed tokens follow,
then tokens seen only in the data, most frequent first (as the seed numbers them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lstm_music.errors import LstmMusicError

FORMAT_NAME = "lstm-music-corpus"
FORMAT_VERSION = 1
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
SPLITS = ("train", "valid", "test")


class CorpusError(LstmMusicError):
    """A corpus folder that is missing, damaged or of another format."""


def build_vocabulary(base: Iterable[str], pieces: Iterable[list[str]]) -> list[str]:
    """Specials, then the tokenizer's fixed tokens, then data tokens by descending count."""
    vocabulary = list(SPECIAL_TOKENS)
    known = set(vocabulary)
    for token in base:
        if token not in known:
            vocabulary.append(token)
            known.add(token)
    counts: Counter[str] = Counter()
    for tokens in pieces:
        counts.update(tokens)
    vocabulary += [token for token, _ in counts.most_common() if token not in known]
    return vocabulary


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
class Piece:
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
        infos = [PieceInfo(**item) for item in _read_json(path, "pieces.json")]
        try:
            ids = np.load(path / "tokens.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CorpusError(f"{path / 'tokens.npy'} is missing or damaged: {error}") from error
        if infos and infos[-1].offset + infos[-1].length > len(ids):
            raise CorpusError(f"{path / 'tokens.npy'} is shorter than pieces.json says: damaged")
        return cls(path, meta, infos, ids, _read_json(path, "manifest.json"))

    @cached_property
    def pieces(self) -> list[Piece]:
        return [Piece(info, self) for info in self.infos]

    def split(self, name: str) -> list[Piece]:
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
        from lstm_music.tokenizers import tokenizer_from_config

        return tokenizer_from_config(self.tokenizer_config)

    def summary(self) -> dict[str, Any]:
        """Counts for `corpus info`: pieces and tokens per split, vocabulary, bad files."""
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
        }


def write_corpus(
    path: Path,
    meta: dict[str, Any],
    pieces: list[tuple[PieceInfo, list[str]]],
    manifest: dict[str, Any],
) -> None:
    """Write a corpus into the new, empty folder `path`, numbering tokens by the vocabulary."""
    token_to_id = {token: i for i, token in enumerate(meta["vocabulary"])}
    dtype = np.uint16 if len(token_to_id) <= np.iinfo(np.uint16).max else np.uint32
    ids = np.empty(sum(len(tokens) for _, tokens in pieces), dtype=dtype)
    offset = 0
    for info, tokens in pieces:
        info.offset, info.length = offset, len(tokens)
        ids[offset : offset + len(tokens)] = [token_to_id.get(t, UNK_ID) for t in tokens]
        offset += len(tokens)
    np.save(path / "tokens.npy", ids, allow_pickle=False)
    _write_json(path / "pieces.json", [asdict(info) for info, _ in pieces])
    _write_json(path / "manifest.json", manifest)
    _write_json(path / "corpus.json", {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta})


def _read_json(folder: Path, name: str) -> Any:
    file = folder / name
    if not folder.is_dir():
        raise CorpusError(f"no corpus at {folder}; make one with `lstm-music prepare`")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CorpusError(f"{folder} is not a complete corpus: {name} is missing") from error
    except (OSError, ValueError) as error:
        raise CorpusError(f"{file} is damaged: {error}") from error


def _write_json(file: Path, data: Any) -> None:
    file.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
