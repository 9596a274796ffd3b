"""`lstm-music compare`: copy detection, Yang & Lerch statistics, overlap, the command."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import symusic
from conftest import make_score, random_melody, write_midi

from lstm_music.cli import main
from lstm_music.corpus.prepare import PrepareConfig, prepare
from lstm_music.evaluation.compare import ReferenceIndex, transition_codes
from lstm_music.evaluation.pieces import natural_key
from lstm_music.evaluation.statistics import (
    STATISTICS,
    Distribution,
    Notes,
    compare_statistics,
    distribution,
    inter_onset_intervals,
    note_lengths,
    notes_of,
    notes_per_bar,
    overlap,
    pitch_classes,
    pitch_range,
    polyphony,
)
from lstm_music.evaluation.verdict import yardstick_warnings

TPQ = 480
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def melody(seed: int, length: int, low: int = 60, high: int = 84) -> list[tuple[int, int, int]]:
    """Random monophonic (time, duration, pitch) notes on an eighth-note grid."""
    rng = random.Random(seed)
    notes, time = [], 0
    for _ in range(length):
        step = TPQ // 2 * rng.choice((1, 1, 2, 3))
        notes.append((time, step, rng.randint(low, high)))
        time += step
    return notes


def shifted(notes: list[tuple[int, int, int]], start: int, semitones: int = 0) -> list:
    """The notes moved to begin at tick `start`, transposed by `semitones`."""
    first = notes[0][0]
    return [(t - first + start, d, p + semitones) for t, d, p in notes]


def end_of(notes: list[tuple[int, int, int]]) -> int:
    return notes[-1][0] + notes[-1][1]


REFERENCE = [melody(seed, 120) for seed in range(20)]


def planted(semitones: int = 0) -> Notes:
    """20 filler notes, notes 50-89 of reference piece 7 (transposed), 20 filler notes.

    The filler's pitches (20-35) are far from the reference's (60-84, transposed up to 87), so
    no transition into, out of or inside the filler matches: the copy is exactly 40 notes.
    """
    before = melody(100, 20, 20, 35)
    excerpt = shifted(REFERENCE[7][50:90], end_of(before), semitones)
    after = shifted(melody(101, 20, 20, 35), end_of(excerpt))
    return notes_of(make_score(before + excerpt + after))


def reference_index(transpose_invariant: bool = False) -> ReferenceIndex:
    return ReferenceIndex([notes_of(make_score(n)) for n in REFERENCE], transpose_invariant)


@pytest.mark.parametrize("transpose_invariant", [False, True])
def test_planted_copy_is_found_at_its_exact_length(transpose_invariant: bool) -> None:
    match = reference_index(transpose_invariant).query(planted(3 if transpose_invariant else 0))
    assert (match.notes, match.longest_run) == (80, 40)
    assert (match.reference_piece, match.reference_note, match.generated_note) == (7, 50, 20)
    assert match.ngram_share == pytest.approx((40 - 7) / (80 - 7))  # 8-grams inside the copy
    assert not match.copied  # under half of the piece
    assert reference_index(transpose_invariant).query(planted(), threshold=0.4).copied


def test_a_transposed_copy_needs_transpose_invariance() -> None:
    assert reference_index(False).query(planted(3)).longest_run <= 4


def test_random_music_copies_nothing() -> None:
    index = reference_index()
    for seed in range(200, 205):
        match = index.query(notes_of(make_score(melody(seed, 120))))
        assert match.longest_run <= 5 and match.ngram_share == 0 and not match.copied


def longest_common_run(a: list[int], b: list[int]) -> int:
    """The longest common substring, the slow obvious way."""
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_longest_run_matches_brute_force() -> None:
    """Small alphabets give many partial matches; the binary search must find the longest."""
    rng = np.random.default_rng(0)

    def piece(n: int) -> Notes:
        onset = np.cumsum(rng.choice([0.5, 1.0], n))
        return Notes(onset, onset + 0.5, rng.integers(60, 63, n))

    for trial in range(40):
        invariant, ngram = bool(trial % 2), int(rng.integers(2, 9))
        references = [piece(int(rng.integers(2, 30))) for _ in range(3)]
        query = piece(int(rng.integers(2, 40)))
        codes = transition_codes(query, invariant).tolist()
        longest = max(
            longest_common_run(codes, transition_codes(r, invariant).tolist()) for r in references
        )
        match = ReferenceIndex(references, invariant, ngram).query(query)
        assert match.longest_run == longest + 1 or (longest == 0 and match.longest_run <= 1)


def hand_piece(signature: tuple[int, int] | None = None) -> Notes:
    """C+E chord, G, C, then D on the next 4/4 bar: counted by hand in the tests below."""
    q = TPQ
    score = make_score(
        [(0, q, 60), (0, 2 * q, 64), (q, q // 2, 67), (3 * q // 2, q // 2, 72), (4 * q, 2 * q, 62)]
    )
    if signature:
        score.time_signatures.append(symusic.TimeSignature(0, *signature))
    return notes_of(score)


def test_statistics_of_a_hand_made_piece() -> None:
    notes = hand_piece()
    assert np.bincount(pitch_classes(notes), minlength=12).tolist() == [
        2, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0,
    ]  # fmt: skip
    assert pitch_range(notes).tolist() == [12]
    assert notes_per_bar(notes).tolist() == [4, 1]  # 4/4: onsets 0, 0, 1, 1.5 | 4
    assert notes_per_bar(hand_piece((3, 4))).tolist() == [4, 1]  # 3/4: same bars here
    assert notes_per_bar(hand_piece((2, 4))).tolist() == [4, 0, 1]  # 2/4: an empty bar
    assert inter_onset_intervals(notes).tolist() == [1.0, 0.5, 2.5]
    assert note_lengths(notes).tolist() == [1.0, 2.0, 1.0 / 2, 1.0 / 2, 2.0]
    # at 1 the first C has ended; at 1.5 the G has ended; the D sounds alone
    assert polyphony(notes).tolist() == [2, 2, 2, 1]
    histogram = distribution(STATISTICS[0], [notes])
    assert histogram.probs.tolist() == pytest.approx([0.4, 0, 0.2, 0, 0.2, 0, 0, 0.2, 0, 0, 0, 0])


def test_overlap_of_identical_and_disjoint_distributions() -> None:
    pieces = [notes_of(random_melody(seed)) for seed in range(3)]
    for statistic in STATISTICS:
        same = distribution(statistic, pieces)
        assert overlap(same, distribution(statistic, pieces)) == pytest.approx(1.0)
    low = [notes_of(make_score(melody(1, 30, 60, 64)))]  # range at most 4
    high = [notes_of(make_score([(0, TPQ, 40), (TPQ, TPQ, 80)]))]  # range 40
    assert overlap(distribution(STATISTICS[1], low), distribution(STATISTICS[1], high)) == 0
    a, b = Distribution(0, np.array([0.5, 0.5]), None, 1), Distribution(1, np.array([1.0]), None, 1)
    assert overlap(a, b) == pytest.approx(0.5)
    assert overlap(a, Distribution(0, np.zeros(0), None, 0)) is None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    for i in range(4):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=40))
    config = PrepareConfig(inputs=[str(root / "midi")], out=str(root / "corpus"),
                           valid_fraction=0.5, workers=1)  # fmt: skip
    return prepare(config, progress=False).corpus.path


def test_compare_command(corpus: Path, tmp_path: Path, capsys) -> None:
    from lstm_music.corpus.store import Corpus

    source = Corpus.load(corpus).split("train")[0].source
    copy = (corpus.parent / "midi" / source).read_bytes()
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "copy.mid").write_bytes(copy)
    write_midi(tmp_path / "gen" / "new.mid", random_melody(99, length=40))
    args = ["compare", str(tmp_path / "gen"), "--reference", str(corpus)]
    assert main([*args, "--json", "--plot", str(tmp_path / "plots")]) == 0
    report = json.loads(capsys.readouterr().out)
    copied, new = report["pieces"]
    assert copied["copied"] and copied["longest_run"] == copied["notes"]
    assert copied["reference_piece"] == source and copied["ngram_share"] == 1.0
    assert not new["copied"] and new["longest_run"] < 8
    assert {s["name"] for s in report["statistics"]} == {s.name for s in STATISTICS}
    assert all(s["valid_vs_train"] is not None for s in report["statistics"])
    assert len(report["plots"]) == len(STATISTICS)
    for png in report["plots"]:
        assert Path(png).read_bytes()[:8] == PNG_SIGNATURE
    assert report["verdict"]["copied"] == ["copy.mid"]
    assert report["verdict"]["text"].startswith("1 of 2 pieces copied (copy.mid); ")
    assert any("2 held-out (valid) pieces" in w for w in report["warnings"])  # corpus of 4
    assert report["yardstick_note"] == report["warnings"][0]  # the key older scripts read
    listening = report["listening_test"]  # 2 generated and 2 valid pieces: too few
    assert listening["ran"] is False and listening["accuracy"] is None
    assert listening["refused"].startswith("too few") and listening["real"] == "valid split"
    assert "listening test not run (too few" in report["verdict"]["text"]
    assert all(s["inside"] in (True, False) and len(s["spread"]) == 2 for s in report["statistics"])
    assert main([*args, "--transpose-invariant"]) == 0
    out = capsys.readouterr().out
    assert "COPIED" in out and "valid vs train" in out and "polyphony" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if ".mid" in line}
    assert rows["copy.mid"][-1] == "COPIED" and rows["new.mid"][-1] == "no"  # never blank
    assert "warning: the yardstick rests on 2 held-out (valid) pieces" in out
    assert "listening test (4-bar excerpts" in out and "  not run: too few" in out
    assert out.splitlines()[-1].startswith("verdict: 1 of 2 pieces copied (copy.mid); ")


def test_compare_runs_the_listening_test(tmp_path: Path, capsys) -> None:
    """Enough pieces on both sides: the block has the figure, its interval, the counts and the
    words, and the verdict rests on it."""
    for i in range(8):
        write_midi(tmp_path / "midi" / f"{i}.mid", random_melody(i, length=160))
    config = PrepareConfig(inputs=[str(tmp_path / "midi")], out=str(tmp_path / "corpus"),
                           valid_fraction=0.5, workers=1)  # fmt: skip
    corpus = prepare(config, progress=False).corpus.path
    for i in range(5):
        write_midi(tmp_path / "gen" / f"{i}.mid", random_melody(100 + i, length=160))
    args = ["compare", str(tmp_path / "gen"), "--reference", str(corpus)]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    test = report["listening_test"]
    assert test["ran"] and test["real"] == "valid split" and test["generated_pieces"] == 5
    assert test["real_pieces"] == 4 and test["real_excerpts"] >= 16
    assert 0 <= test["low"] <= test["accuracy"] <= test["high"] <= 1 and test["words"]
    assert report["verdict"]["listening"] == test["words"]
    assert f"{test['words']}: a classifier tells generated" in report["verdict"]["text"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"  accuracy {test['accuracy']:.1%} (95% interval" in out


def test_pieces_come_in_natural_order(corpus: Path, tmp_path: Path, capsys) -> None:
    for seed, name in enumerate(("piece-10", "piece-2", "Piece-1", "piece-1b")):
        write_midi(tmp_path / "gen" / f"{name}.mid", random_melody(50 + seed, length=30))
    assert main(["compare", str(tmp_path / "gen"), "--reference", str(corpus), "--json"]) == 0
    files = [p["file"] for p in json.loads(capsys.readouterr().out)["pieces"]]
    assert files == ["Piece-1.mid", "piece-1b.mid", "piece-2.mid", "piece-10.mid"]
    assert sorted(["a10b2", "a10b10", "a9", "a10b"], key=natural_key) == [
        "a9", "a10b", "a10b2", "a10b10",
    ]  # fmt: skip


def test_yardstick_warnings() -> None:
    assert yardstick_warnings(12, 30, "train") == []
    (few,) = yardstick_warnings(3, 30, "train")
    assert "3 held-out (valid) pieces, fewer than 10" in few
    assert yardstick_warnings(0, 30, "train") == ["no valid split in the corpus: yardstick skipped"]
    (other_split,) = yardstick_warnings(12, 30, "test")
    assert "train split" in other_split and "test split" in other_split


def test_statistics_inside_or_below_the_held_out_spread() -> None:
    """Like music is inside the spread of as many held-out pieces; a far wider range is below."""

    def pieces(seeds: range, low: int = 60, high: int = 84) -> list[Notes]:
        return [notes_of(make_score(melody(seed, 60, low, high))) for seed in seeds]

    train, valid = pieces(range(30)), pieces(range(30, 45))
    alike = compare_statistics(pieces(range(45, 55)), train, valid, train)
    assert all(s.inside for s in alike), [
        (s.statistic.name, s.spread, s.versus_train) for s in alike
    ]
    wide = {
        s.statistic.name: s
        for s in compare_statistics(pieces(range(55, 65), 30, 100), train, valid, train)
    }
    assert wide["pitch_range"].inside is False
    assert wide["pitch_range"].versus_train < wide["pitch_range"].spread[0]
    low, high = wide["pitch_range"].spread
    assert 0 <= low <= high <= 1
    assert compare_statistics(pieces(range(3)), train)[0].inside is None  # no yardstick


def test_compare_errors_are_one_line(corpus: Path, tmp_path: Path, capsys) -> None:
    melody_file = write_midi(tmp_path / "a.mid", random_melody(1, length=16))
    write_midi(tmp_path / "empty" / "silent.mid", make_score([]))
    cases = [
        ([str(tmp_path / "missing.mid"), "--reference", str(corpus)], "no such file"),
        ([str(melody_file), "--reference", str(tmp_path / "nowhere")], "no corpus at"),
        ([str(tmp_path / "empty"), "--reference", str(corpus)], "silent.mid: no notes"),
        ([str(melody_file), "--reference", str(corpus), "--threshold", "2"], "--threshold"),
    ]
    for argv, message in cases:
        assert main(["compare", *argv]) == 1
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1


def test_compare_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--transpose-invariant" in out and "is `inside`" in out and "verdict" in out


def test_listening_test_takes_valid_and_test_when_valid_is_too_small(
    tmp_path: Path, capsys
) -> None:
    """A small folder's valid split (2 pieces) cannot hold the test; valid and test together
    (4 pieces) can, and the report names them."""
    for i in range(10):
        write_midi(tmp_path / "midi" / f"{i}.mid", random_melody(i, length=160))
    config = PrepareConfig(inputs=[str(tmp_path / "midi")], out=str(tmp_path / "corpus"),
                           valid_fraction=0.2, test_fraction=0.2, workers=1)  # fmt: skip
    corpus = prepare(config, progress=False).corpus.path
    from lstm_music.corpus.store import Corpus

    assert [len(Corpus.load(corpus).split(s)) for s in ("valid", "test")] == [2, 2]
    for i in range(5):
        write_midi(tmp_path / "gen" / f"{i}.mid", random_melody(100 + i, length=160))
    assert main(["compare", str(tmp_path / "gen"), "--reference", str(corpus), "--json"]) == 0
    test = json.loads(capsys.readouterr().out)["listening_test"]
    assert test["ran"] and test["real"] == "held-out (valid and test) split"
    assert test["real_pieces"] == 4
