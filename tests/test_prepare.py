"""`prepare` end to end: corpus layout, caching, splits, track choice, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_score, random_melody, require_seed_midi, write_midi

from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.corpus.store import SPECIAL_TOKENS, Corpus
from lstm_music.errors import LstmMusicError


def run(inputs: list[Path], out: Path, **settings) -> object:
    config = PrepareConfig(inputs=[str(i) for i in inputs], out=str(out), **settings)
    return prepare(config, progress=False)


def test_corpus_layout_and_round_trip(midi_folder: Path, tmp_path: Path) -> None:
    result = run([midi_folder], tmp_path / "corpus", workers=2)
    corpus = Corpus.load(tmp_path / "corpus")
    assert result.counts == {"ok": 10, "skipped": 0, "failed": 0}
    assert len(corpus.pieces) == 10
    assert corpus.vocabulary[:4] == list(SPECIAL_TOKENS)
    assert {p.source for p in corpus.pieces} == {
        str(p.relative_to(midi_folder)) for p in midi_folder.rglob("*.mid")
    }
    assert sorted(p.split for p in corpus.pieces).count("valid") == 1  # round(0.1 * 10)
    tokens = corpus.ids
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    assert sum(p.info.length for p in corpus.pieces) == len(tokens)
    # tokens on disk are exactly what the tokenizer makes of the (merged, cleaned) file
    tokenizer = corpus.tokenizer()
    piece = next(p for p in corpus.pieces if p.source == "piece1.mid")
    from lstm_music.tokens.midi import TrackOptions, load_pieces

    [(_, score)] = load_pieces((midi_folder / "piece1.mid").read_bytes(), TrackOptions())
    assert piece.tokens == tokenizer.encode(score)
    assert piece.ids.tolist() == [corpus.token_to_id[t] for t in piece.tokens]
    decoded = tokenizer.decode(piece.tokens)
    assert decoded.note_num() == score.note_num()
    assert piece.info.seconds > 0 and piece.info.notes == score.note_num()
    manifest = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert all(len(f["sha256"]) == 64 and f["status"] == "ok" for f in manifest["files"])


def test_rerun_reuses_unchanged_files(midi_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    first = run([midi_folder], out)
    assert first.reused == 0
    again = run([midi_folder], out)
    assert again.reused == 10
    assert np.array_equal(Corpus.load(out).ids, first.corpus.ids)
    write_midi(midi_folder / "piece2.mid", random_melody(99))
    changed = run([midi_folder], out)
    assert changed.reused == 9
    other_tokenizer = run([midi_folder], out, tokenizer="tsd")
    assert other_tokenizer.reused == 0  # another tokenizer means new tokens for every file


def test_split_is_deterministic_and_seeded(midi_folder: Path, tmp_path: Path) -> None:
    def valid(seed: int, out: str) -> set[str]:
        corpus = run([midi_folder], tmp_path / out, seed=seed, valid_fraction=0.3).corpus
        return {p.source for p in corpus.split("valid")}

    assert valid(0, "a") == valid(0, "b")
    assert len(valid(0, "a")) == 3
    assert any(valid(seed, f"s{seed}") != valid(0, "a") for seed in (1, 2, 3))


def test_split_from_folders(tmp_path: Path) -> None:
    for split, count in (("train", 3), ("valid", 2), ("test", 1)):
        for i in range(count):
            write_midi(tmp_path / "in" / split / f"{i}.mid", random_melody(i + 10 * count))
    corpus = run([tmp_path / "in"], tmp_path / "corpus").corpus
    assert [len(corpus.split(s)) for s in ("train", "valid", "test")] == [3, 2, 1]
    assert all(p.source.startswith(p.split + "/") for p in corpus.pieces)


def test_track_modes(tmp_path: Path) -> None:
    score = random_melody(1)
    strings = make_score([(0, 480, 70), (480, 480, 72)], program=40).tracks[0]
    drums = make_score([(0, 120, 36), (480, 120, 38)], drum=True).tracks[0]
    score.tracks.extend([strings, drums])
    write_midi(tmp_path / "in" / "band.mid", score)
    notes = {}
    for mode, extra in (("merge", {}), ("seed", {}), ("separate", {}), ("programs", {})):
        settings = {"programs": [40]} if mode == "programs" else {}
        corpus = run([tmp_path / "in"], tmp_path / mode, tracks=mode, **settings, **extra).corpus
        notes[mode] = [p.info.notes for p in corpus.pieces]
    right, left = (len(t.notes) for t in score.tracks[:2])
    assert notes["merge"] == [right + left + 2]  # drums left out by default
    assert notes["seed"] == [right + left]  # the tracks sharing the first one's instrument
    assert notes["separate"] == [right, left, 2]
    assert notes["programs"] == [2]
    with_drums = run([tmp_path / "in"], tmp_path / "drums", drums=True).corpus
    assert with_drums.pieces[0].info.notes == right + left + 4


def test_grid_and_seed_tokenizers_make_corpora(midi_folder: Path, tmp_path: Path) -> None:
    grid = run([midi_folder], tmp_path / "grid", tokenizer="grid", grid_step=0.5).corpus
    assert grid.tokenizer_config["params"] == {"step": 0.5}
    assert "Step" in grid.pieces[0].tokens
    seed = run([midi_folder], tmp_path / "seed", tokenizer="seed").corpus
    assert all("_" not in t for t in seed.pieces[0].tokens)


def test_existing_folder_that_is_not_a_corpus_is_never_replaced(
    midi_folder: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "music"
    write_midi(precious / "mine.mid", random_melody(5))
    with pytest.raises(LstmMusicError, match="not an lstm-music corpus"):
        run([midi_folder], precious)
    assert (precious / "mine.mid").exists()


def test_failed_run_keeps_the_old_corpus(midi_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    run([midi_folder], out)
    before = (out / "tokens.npy").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"not midi at all")
    with pytest.raises(LstmMusicError, match="no usable piece"):
        run([bad], out)
    assert (out / "tokens.npy").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".corpus")]  # no leftovers


def test_seed_midi_files_all_prepare(tmp_path: Path) -> None:
    folder = require_seed_midi()
    corpus = run([folder], tmp_path / "corpus", tokenizer="seed").corpus
    assert len(corpus.pieces) == 92
    assert len(corpus.split("valid")) == 9
