"""`prepare` streams tokens to disk (issue 10, point 11), and its one-line errors and warnings."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus import store as corpus_module
from lstm_music.corpus import workers
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import Corpus, CorpusError, CorpusPiece, TokenSink
from lstm_music.errors import LstmMusicError


def run(inputs: list[Path], out: Path, **settings):
    config = PrepareConfig(inputs=[str(i) for i in inputs], out=str(out), **settings)
    return prepare(config, progress=False)


def test_ids_reach_disk_while_results_arrive(
    midi_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """After each worker result, the temporary ids file has grown: nothing waits in memory."""
    sizes: list[int] = []
    original = workers.IsolatedPool.imap_unordered

    def spying(self, tasks):
        for outcome in original(self, tasks):
            files = list(tmp_path.glob(".corpus.*/ids.tmp"))
            sizes.append(files[0].stat().st_size if files else -1)
            yield outcome

    monkeypatch.setattr(workers.IsolatedPool, "imap_unordered", spying)
    run([midi_folder], tmp_path / "corpus", workers=2)
    assert len(sizes) == 10 and sizes[0] >= 0
    # buffered writes reach the file in chunks; by the last result most ids are there
    assert sizes == sorted(sizes) and sizes[-1] > 0


def test_rerun_reads_reused_tokens_as_ids_not_strings(
    midi_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "corpus"
    first = run([midi_folder], out)
    before = np.array(first.corpus.ids), first.corpus.vocabulary

    def no_strings(self):
        raise AssertionError("the cache must not turn every old piece into token strings")

    monkeypatch.setattr(CorpusPiece, "tokens", property(no_strings))
    again = run([midi_folder], out)
    assert again.reused == 10
    assert np.array_equal(again.corpus.ids, before[0]) and again.corpus.vocabulary == before[1]


def test_vocabulary_order_does_not_depend_on_arrival_order(tmp_path: Path) -> None:
    """Ties in count are broken by first appearance in file order, as before streaming."""
    pieces = [["b", "a", "c"], ["c", "a", "b", "d"], ["d"]]  # a, b, c, d: counts 2, 2, 2, 2
    vocabularies, layouts = [], []
    for arrival in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        folder = tmp_path / f"arrival{''.join(map(str, arrival))}"
        folder.mkdir()
        sink = TokenSink(folder, ["fixed"])
        spans = {i: sink.add(sink.ids_of(pieces[i]), i << 32) for i in arrival}
        vocabulary = sink.finish(folder, [spans[i] for i in range(3)])
        ids = np.load(folder / "tokens.npy")
        vocabularies.append(vocabulary)
        layouts.append([vocabulary[i] for i in ids.tolist()])
        assert not (folder / "ids.tmp").exists()
    assert vocabularies[0][4:] == ["fixed", "b", "a", "c", "d"]
    assert all(v == vocabularies[0] for v in vocabularies)
    assert all(layout == [t for p in pieces for t in p] for layout in layouts)


def test_disk_full_while_streaming_is_one_line(
    midi_folder: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "corpus"
    run([midi_folder], out)
    before = (out / "tokens.npy").read_bytes()

    def full(self, distinct, codes, order):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(TokenSink, "add_coded", full)  # every piece's ids are written here
    code = main(["prepare", str(midi_folder), "--out", str(out), "-q", "--tokenizer", "tsd"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "No space left on device (disk full?)" in err and "Traceback" not in err
    assert "unchanged" in err and (out / "tokens.npy").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "midi"]  # no temp folder


def test_disk_full_writing_metadata_is_one_line(
    midi_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    def full(file, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corpus_module, "_write_json", full)
    with pytest.raises(LstmMusicError, match="disk full"):
        run([midi_folder], tmp_path / "corpus")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["midi"]


def small_corpus(midi_folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "corpus"
    run([midi_folder], out)
    return out


def test_zero_byte_tokens_is_a_corpus_error(midi_folder: Path, tmp_path: Path) -> None:
    out = small_corpus(midi_folder, tmp_path)
    (out / "tokens.npy").write_bytes(b"")
    with pytest.raises(CorpusError, match="empty"):
        Corpus.load(out)


def test_ids_outside_the_vocabulary_are_a_corpus_error(midi_folder: Path, tmp_path: Path) -> None:
    out = small_corpus(midi_folder, tmp_path)
    ids = np.load(out / "tokens.npy")
    size = len(json.loads((out / "corpus.json").read_text())["vocabulary"])
    ids[5] = size
    np.save(out / "tokens.npy", ids)
    with pytest.raises(CorpusError, match=f"token id {size} is outside the vocabulary"):
        Corpus.load(out)
    np.save(out / "tokens.npy", ids.astype(np.float32))
    with pytest.raises(CorpusError, match="damaged"):
        Corpus.load(out)


def test_damaged_pieces_json_is_a_corpus_error(midi_folder: Path, tmp_path: Path) -> None:
    out = small_corpus(midi_folder, tmp_path)
    (out / "pieces.json").write_text('[{"source": "a.mid", "what": 1}]')
    with pytest.raises(CorpusError, match="pieces.json is damaged"):
        Corpus.load(out)


def test_old_corpus_without_trim_fields_still_loads(midi_folder: Path, tmp_path: Path) -> None:
    out = small_corpus(midi_folder, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        entry.pop("trimmed")
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert len(Corpus.load(out).pieces) == 10


def test_small_or_empty_splits_are_warned_about(tmp_path: Path, capsys) -> None:
    write_midi(tmp_path / "one" / "only.mid", random_melody(1))
    lone = run([tmp_path / "one"], tmp_path / "c1")
    assert any("valid split is empty" in w and "best.safetensors" in w for w in lone.warnings)
    for i in range(6):
        write_midi(tmp_path / "six" / f"{i}.mid", random_melody(i))
    few = run([tmp_path / "six"], tmp_path / "c6", test_fraction=0.2)
    assert any("valid split has only 1 piece(s)" in w for w in few.warnings)
    assert any("test split has only 1 piece(s)" in w for w in few.warnings)
    none_asked = run([tmp_path / "six"], tmp_path / "c0", valid_fraction=0.0)
    assert none_asked.warnings == []
    code = main(["prepare", str(tmp_path / "one"), "--out", str(tmp_path / "c2"), "-q"])
    assert code == 0 and "warning: the valid split is empty" in capsys.readouterr().out


def test_nothing_usable_names_the_files(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        (folder / f"bad{i}.mid").write_text("not midi")
    with pytest.raises(LstmMusicError) as caught:
        run([folder], tmp_path / "corpus")
    message = str(caught.value)
    assert "bad0.mid (not a MIDI file" in message and "bad2.mid" in message
    assert "and 4 more" in message and "bad6.mid" not in message
    assert "\n" not in message
