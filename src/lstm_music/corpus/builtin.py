"""Built-in public-domain corpora: scores that ship with music21, converted to MIDI once.

music21 (the optional extra `lstm-music[corpora]`) bundles MusicXML and ABC encodings of
public-domain music. A collection is converted once, in parallel worker processes, into the
user's cache folder; from then on it is a plain MIDI folder that `prepare` reads like any other,
and music21 is not needed again. music21 is imported only inside the conversion, never on the
main path. Several collections can be converted and prepared together as one corpus.

Licences were checked folder by folder, from the licence text embedded in the files and folders
(ABC headers, kern !!! records, MusicXML <rights>) and music21/corpus/license.txt: a collection
is offered only when its music is public domain and nothing restricts the encoding. Not offered:
Essen (non-commercial only), Palestrina ("Rights to all derivative electronic formats
reserved"), Josquin (GPL), Monteverdi and trecento (encoded from copyrighted modern editions),
and folders of a few pieces or of unknown encoders.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstm_music.corpus.builtin_registry import (
    COLLECTIONS,
    FORMAT,
    get_collection,
    resolve_names,
)
from lstm_music.errors import LstmMusicError


def cache_root() -> Path:
    """$LSTM_MUSIC_CACHE, else $XDG_CACHE_HOME/lstm-music, else ~/.cache/lstm-music."""
    if os.environ.get("LSTM_MUSIC_CACHE"):
        return Path(os.environ["LSTM_MUSIC_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "lstm-music"
    return Path.home() / ".cache" / "lstm-music"


def cache_folder(name: str, limit: int | None = None) -> Path:
    """Where collection `name` is (or will be) converted; a slice gets its own folder."""
    get_collection(name)
    if limit is not None and limit < 1:
        raise LstmMusicError("the piece limit must be at least 1")
    return cache_root() / "corpora" / (f"{name}-first{limit}" if limit else name)


def read_source(folder: Path) -> dict[str, Any] | None:
    """The folder's source.json when it is a finished conversion of the current format."""
    try:
        source = json.loads((Path(folder) / "source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) and source.get("format") == FORMAT else None


def builtin_folder(
    name: str,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """The MIDI folder of collection `name`, converting it first if it is not cached yet.

    `limit` converts only the first pieces, into a folder of its own (a quick try never
    poisons the full cache). Pieces that fail are listed in source.json and the summary, which
    `notify` hears after a conversion; the call fails only when nothing converts.
    """
    collection = get_collection(name)
    final = cache_folder(name, limit)
    if read_source(final) is not None:
        return final
    if final.exists() and not (final / "source.json").exists():
        raise LstmMusicError(f"{final} exists but is not a finished conversion; delete it")
    from lstm_music.corpus.builtin_convert import convert, list_pieces, music21_corpus

    corpus_dir = music21_corpus()
    pieces = list_pieces(collection, corpus_dir)[:limit]
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        source = convert(collection, corpus_dir, pieces, temporary, workers, progress)
        source["limit"] = limit
        text = json.dumps(source, indent=1, ensure_ascii=False)
        (temporary / "source.json").write_text(text + "\n", encoding="utf-8")
        publish(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    if notify:
        notify(_summary(read_source(final) or source, final))
    return final


def builtin_folders(
    names: list[str],
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> list[Path]:
    """The MIDI folders of several collections, each converted (one after another) if needed.

    Each collection keeps its own cache folder, so a corpus of several collections names each
    piece by its folder: `prepare` gives sources like `airds-airs/airds-0001-....mid`.
    """
    return [builtin_folder(name, limit, workers, progress, notify) for name in names]


def _summary(source: dict[str, Any], folder: Path) -> str:
    return (
        f"{source['collection']}: {source['count']} pieces converted, "
        f"{len(source['skipped'])} skipped, {len(source['failures'])} failed "
        f"in {source['seconds']:.0f} s -> {folder}"
    )


def publish(
    temporary: Path, final: Path, finished: Callable[[Path], Any | None] = read_source
) -> None:
    """Rename the finished folder into place; an unfinished or older-format one is replaced.
    `finished` reads a folder's record (None: not a finished one): built-in conversions' by
    default, `corpus import`'s for its folders."""
    if finished(final) is not None:
        return  # another process finished first: keep its folder, drop ours
    from lstm_music.fsutil import swap_in

    try:
        swap_in(temporary, final)
    except OSError as error:  # another process published between our check and our rename
        if finished(final) is None:
            raise LstmMusicError(f"cannot move the conversion into {final}: {error}") from error


# the registry's names stay importable from here, where callers look for built-in corpora
__all__ = [
    "COLLECTIONS",
    "FORMAT",
    "builtin_folder",
    "builtin_folders",
    "cache_folder",
    "cache_root",
    "get_collection",
    "publish",
    "read_source",
    "resolve_names",
]
