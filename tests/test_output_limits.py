"""Output limits: every piece respects the asked length and the caps, whatever the primer holds.

The hostile primer is built here, independently of how MIDI reading treats odd headers: notes
200 quarters apart, read by a model whose corpus kept long silences (--max-silence 0), so that
1,000 primer tokens span about 17 minutes. Also: a --seconds request gives pieces of exactly
that length, a piece that falls short says by how much, and a primer without usable notes
is refused with its reason.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import symusic
from conftest import make_score, random_melody, write_midi

from lstm_music.cli import main
from lstm_music.errors import LstmMusicError
from lstm_music.generation import sampling as sample
from lstm_music.generation.generate import GenerateOptions, generate
from lstm_music.generation.primers import midi_primer
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.shipped import resolve_checkpoint
from lstm_music.render.audio import render_midi_file, render_wav

GAP = 200 * 480  # ticks between the hostile primer's notes: 200 quarter notes


def sparse_score(notes: int) -> symusic.Score:
    """Notes 200 quarters apart at 30 bpm: minutes of silence between them."""
    score = make_score([(i * GAP, 480, 60 + i) for i in range(notes)])
    score.tempos = [symusic.Tempo(0, 30.0)]
    return score


@pytest.fixture(scope="module")
def silent_run(tmp_path_factory) -> Path:
    """A tiny trained run whose corpus keeps every silence (--max-silence 0)."""
    from lstm_music.corpus.prepare import PrepareConfig, prepare
    from lstm_music.training.run import train
    from lstm_music.training.settings import TrainConfig

    root = tmp_path_factory.mktemp("limits")
    for i in range(5):
        write_midi(root / "midi" / f"{i}.mid", random_melody(i, length=30))
    config = PrepareConfig(inputs=[str(root / "midi")], out=str(root / "corpus"), max_silence=0)
    prepare(config, progress=False)
    small = TrainConfig(
        embedding_dim=16, hidden_sizes=[32], window=32, batch_size=2, max_steps=3, device="cpu"
    )
    train(root / "corpus", root / "runs" / "silent", small, progress=False)
    return root / "runs" / "silent"


@pytest.fixture(scope="module")
def bach():
    return load_checkpoint(resolve_checkpoint("bach-chorales"))


def score_seconds(score: symusic.Score) -> float:
    return float(score.to("second").end())


def test_a_long_primer_is_counted_against_the_cap(silent_run, tmp_path) -> None:
    checkpoint = load_checkpoint(silent_run / "best.safetensors")
    primer = midi_primer(write_midi(tmp_path / "sparse.mid", sparse_score(12)), checkpoint, 1000)
    alone = checkpoint.tokenizer().decode(primer)
    assert score_seconds(alone) > 600  # hostile indeed: the primer alone is over ten minutes
    for include in (True, False):
        options = GenerateOptions(tokens=64, num=3, seed=1, primer=primer, max_seconds=30,
                                  include_primer=include)  # fmt: skip
        for piece in generate(checkpoint, options):
            assert score_seconds(piece.score) <= 30 + 1e-6 and piece.seconds <= 30 + 1e-6
            if include:
                assert any("the primer lasts" in w for w in piece.warnings)
    # the default cap without --seconds: ten minutes, primer included
    for piece in generate(checkpoint, tokens=64, num=2, seed=2, primer=primer):
        assert score_seconds(piece.score) <= sample.DEFAULT_MAX_SECONDS + 1e-6


def test_cli_generate_with_a_hostile_primer_stays_under_the_cap(silent_run, tmp_path, capsys):
    primer = write_midi(tmp_path / "sparse.mid", sparse_score(12))
    out = tmp_path / "out.mid"
    flags = ["--primer", str(primer), "--primer-tokens", "1000", "--tokens", "64", "--num", "2"]
    assert main(["generate", str(silent_run), "--out", str(out), "--seed", "1", *flags]) == 0
    for file in sorted(tmp_path.glob("out-*.mid")):
        assert score_seconds(symusic.Score(str(file))) <= sample.DEFAULT_MAX_SECONDS + 1e-6
    assert "warning: the primer lasts" in capsys.readouterr().out
    # an explicit, smaller cap and --seconds within it
    code = main(["generate", str(silent_run), "--out", str(out), "--seconds", "20",
                 "--max-seconds", "20", *flags])  # fmt: skip
    assert code == 0
    for file in sorted(tmp_path.glob("out-*.mid")):
        assert score_seconds(symusic.Score(str(file))) <= 20 + 1e-6
    assert main(["generate", str(silent_run), "--out", str(out), "--seconds", "30",
                 "--max-seconds", "20"]) == 1  # fmt: skip
    assert "over the 20 s cap" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["fallback", "auto"])
def test_render_cuts_audio_at_its_cap(tmp_path, engine: str) -> None:
    score = sparse_score(4)  # 600 quarters at 30 bpm: 20 minutes
    assert score_seconds(score) > 1000
    result = render_wav(score, tmp_path / "long.wav", sample_rate=8000, engine=engine,
                        max_seconds=5)  # fmt: skip
    with wave.open(str(result.path)) as audio:
        frames, rate = audio.getnframes(), audio.getframerate()
    assert frames <= (5 + 2) * rate and result.seconds <= 7
    assert "audio cap" in (result.warning or "")
    with pytest.raises(Exception, match="above 0"):
        render_wav(score, tmp_path / "x.wav", engine="fallback", max_seconds=0)


def test_render_cli_takes_the_cap(tmp_path, capsys) -> None:
    midi = write_midi(tmp_path / "long.mid", sparse_score(4))
    wav = tmp_path / "long.wav"
    code = main(["render", str(midi), "--wav", str(wav), "--engine", "fallback",
                 "--sample-rate", "8000", "--max-seconds", "3"])  # fmt: skip
    assert code == 0 and "audio cap" in capsys.readouterr().err
    assert wav.stat().st_size <= 44 + (3 + 2) * 8000 * 2
    assert render_midi_file(midi, tmp_path / "again.wav", engine="fallback",
                            sample_rate=8000, max_seconds=3).seconds <= 5  # fmt: skip


def test_render_drops_what_follows_the_last_note(tmp_path) -> None:
    score = make_score([(0, 480, 60), (480, 480, 64)])  # two notes: 1 s at 120 bpm
    score.tempos.append(symusic.Tempo(268_000_000, 120.0))  # a tempo change hours later
    midi = write_midi(tmp_path / "padded.mid", score)
    result = render_midi_file(midi, tmp_path / "padded.wav", engine="fallback", sample_rate=8000)
    assert result.seconds < 5 and not result.warning


@pytest.mark.parametrize(("seconds", "seed"), [(10, 1), (30, 2)])
def test_seconds_give_pieces_of_exactly_that_length(bach, seconds: float, seed: int) -> None:
    """With the shipped model: the old cut dropped notes crossing the end (9.5 s for 10)."""
    for piece in generate(bach, seconds=seconds, num=8, seed=seed):
        assert abs(score_seconds(piece.score) - seconds) < 0.05
        assert abs(piece.seconds - seconds) < 0.05
        assert piece.shortfall < 0.05 and not piece.warnings


def test_bars_give_pieces_of_that_many_bars(bach) -> None:
    for piece in generate(bach, bars=4, num=4, seed=3):
        bar = piece.score.tpq * 4
        assert piece.score.end() == 4 * bar and piece.shortfall == 0


def test_a_tiny_token_cap_reports_the_shortfall(bach, tmp_path, capsys) -> None:
    for piece in generate(bach, seconds=30, num=2, seed=1, max_tokens=50):
        assert 0 < piece.seconds < 30
        assert piece.shortfall == pytest.approx(30 - piece.seconds)
        assert any("short of the asked 30" in w and "50 new tokens" in w for w in piece.warnings)
    out = str(tmp_path / "short.mid")
    code = main(["generate", "bach-chorales", "--out", out, "--seconds", "30",
                 "--max-tokens", "50", "--seed", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "short of the asked 30" in printed and "larger token cap" in printed
    assert "(--max-tokens raises the cap of new tokens)" in printed  # the CLI names its flag


def test_demo_shows_the_shortfall(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sample, "MIN_TOKEN_CAP", 40)
    monkeypatch.setattr(sample, "TOKENS_PER_SECOND_CAP", 1)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--num", "1", "--seconds", "20", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "short)" in printed and "short of the asked 20" in printed


def test_a_primer_without_readable_notes_says_why(silent_run, tmp_path, capsys) -> None:
    low = write_midi(tmp_path / "low.mid", make_score([(i * 480, 480, 10) for i in range(8)]))
    out = str(tmp_path / "x.mid")
    assert main(["generate", str(silent_run), "--out", out, "--primer", str(low)]) == 1
    assert "no notes this model's tokenizer can read" in capsys.readouterr().err


def _silent_tail_primer(silent_run: Path, tmp_path: Path):
    """A checkpoint whose tokenizer ends every piece with 50 empty bars, and a primer file."""
    checkpoint = load_checkpoint(silent_run / "best.safetensors")
    tokenizer = checkpoint.tokenizer()
    encode = tokenizer.encode
    tokenizer.encode = lambda score: encode(score) + ["Bar_None"] * 50
    checkpoint.tokenizer = lambda: tokenizer
    return checkpoint, write_midi(tmp_path / "tail.mid", random_melody(3, length=8))


def test_a_primer_ending_in_silence_says_why(silent_run, tmp_path) -> None:
    """The last --primer-tokens tokens all silence (bars after the last note, as a file with
    meta events long after its notes gives): refused with the reason, not "0 notes, 0.0 s"."""
    checkpoint, primer = _silent_tail_primer(silent_run, tmp_path)
    with pytest.raises(LstmMusicError, match="last 20 tokens hold no notes, only the silence"):
        midi_primer(primer, checkpoint, 20)
    assert len(midi_primer(primer, checkpoint, 100)) == 100  # enough tokens to reach the notes


def web_client(runs: Path, workdir: Path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from lstm_music.web.app import create_app

    workdir.mkdir(parents=True, exist_ok=True)
    return TestClient(create_app(runs, workdir, workers=1, max_queue=3))


def test_web_pieces_respect_the_caps_whatever_the_primer(silent_run, tmp_path) -> None:
    from lstm_music.web.schemas import MAX_SECONDS

    with web_client(silent_run.parent, tmp_path / "work") as client:
        data = sparse_score(5).dumps_midi()  # 800 quarters: about 400 s as the model reads it
        upload = client.post("/api/primers", files={"file": ("sparse.mid", data, "audio/midi")})
        assert upload.status_code == 200, upload.text
        wav_cap = 44 + (MAX_SECONDS + 2) * 44100 * 2 * 2  # 16-bit stereo, plus the release
        for length in ({"tokens": 64}, {"seconds": MAX_SECONDS}):
            body = {"model": "silent", "primer_id": upload.json()["id"], "primer_tokens": 1000,
                    "num": 2, "seed": 1, **length}  # fmt: skip
            answer = client.post("/api/generate", json=body)
            assert answer.status_code == 200, answer.text
            for piece in answer.json()["pieces"]:
                assert piece["seconds"] <= MAX_SECONDS + 1e-6
                assert "the primer lasts" in piece["warning"]
                midi = client.get(piece["midi_url"]).content
                assert score_seconds(symusic.Score.from_midi(midi)) <= MAX_SECONDS + 1e-6
                assert len(client.get(piece["wav_url"]).content) <= wav_cap


def test_web_pieces_say_when_they_fall_short(silent_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sample, "MIN_TOKEN_CAP", 20)
    monkeypatch.setattr(sample, "TOKENS_PER_SECOND_CAP", 1)
    with web_client(silent_run.parent, tmp_path / "work") as client:
        answer = client.post("/api/generate", json={"model": "silent", "seconds": 60, "seed": 1})
        assert answer.status_code == 200, answer.text
        [piece] = answer.json()["pieces"]
        assert piece["seconds"] < 60 and "short of the asked 60" in piece["warning"]
        assert "--max-tokens" not in piece["warning"]  # a CLI flag means nothing to the page


def _delta(ticks: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [ticks & 0x7F]
    while ticks > 0x7F:
        ticks >>= 7
        out.append(0x80 | (ticks & 0x7F))
    return bytes(reversed(out))


def far_tempo_without_notes() -> bytes:
    """51 bytes: no notes, a time signature and a tempo at 0, a tempo at tick 268 million."""
    tempo = b"\xff\x51\x03\x07\xa1\x20"  # 500,000 us a quarter
    events = b"\x00\xff\x58\x04\x04\x02\x18\x08" + b"\x00" + tempo
    events += _delta(268_000_000) + tempo + b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x01\xe0"
    data = header + b"MTrk" + len(events).to_bytes(4, "big") + events
    assert len(data) == 51
    return data


def test_a_noteless_file_with_a_far_tempo_renders_briefly(tmp_path) -> None:
    """It asked for ~46 GiB: no notes measured 0 s, so nothing was cut (issue 10 review)."""
    midi = tmp_path / "far.mid"
    midi.write_bytes(far_tempo_without_notes())
    wav = tmp_path / "far.wav"
    assert main(["render", str(midi), "--wav", str(wav), "--sample-rate", "8000"]) == 0
    assert wav.stat().st_size <= 44 + 8000 * 2 * 2


def test_no_engine_allocates_past_the_audio_cap(tmp_path) -> None:
    from lstm_music.render.synth import synthesize
    from lstm_music.tokens.midi import read_score

    score = read_score(far_tempo_without_notes())  # not trimmed: ends 78 hours in
    result = render_wav(score, tmp_path / "x.wav", sample_rate=8000, max_seconds=3)
    assert result.seconds <= 5 and "audio cap" in (result.warning or "")
    assert len(synthesize(score, 8000, max_frames=800)) <= 800


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("name", "timed"), [("seed", False), ("remi", True)])
def test_primers_are_read_as_the_corpus_was(monkeypatch, name: str, timed: bool) -> None:
    """An untimed (seed) model's corpus kept what follows the music: so must its primers."""
    from types import SimpleNamespace

    from lstm_music.tokens import get_tokenizer, midi

    seen = []

    def capture(score, options):
        seen.append(options)
        raise _Stop

    monkeypatch.setattr(midi, "read_file", lambda path: b"")
    monkeypatch.setattr(midi, "read_score", lambda data: None)
    monkeypatch.setattr(midi, "score_pieces", capture)
    checkpoint = SimpleNamespace(
        corpus_config={"max_silence": 0.0, "drums": True},
        tokenizer=lambda: get_tokenizer(name),
        vocabulary=[],
    )
    with pytest.raises(_Stop):
        midi_primer("x.mid", checkpoint, 10)
    [options] = seen
    assert options.trim_after_music is timed and options.max_silence == 0 and options.drums


def test_compare_reads_generated_files_as_the_reference_did(silent_run, monkeypatch) -> None:
    from lstm_music.evaluation import compare

    seen = []

    def capture(inputs, options=None):
        seen.append(options)
        raise _Stop

    monkeypatch.setattr(compare, "load_generated", capture)
    with pytest.raises(_Stop):
        compare.compare(["x.mid"], silent_run.parent.parent / "corpus")
    [options] = seen
    assert options is not None and options.max_silence == 0 and options.trim_after_music


def test_library_messages_name_no_cli_flag(silent_run, tmp_path) -> None:
    """The web page shows these: "--primer-tokens" or "--max-seconds" mean nothing there."""
    checkpoint, primer = _silent_tail_primer(silent_run, tmp_path)
    with pytest.raises(LstmMusicError) as caught:
        midi_primer(primer, checkpoint, 20)
    assert "--" not in str(caught.value) and "more primer tokens" in str(caught.value)
    for settings in ({"seconds": 30, "max_seconds": 20}, {}):
        with pytest.raises(LstmMusicError) as caught:
            if settings:
                GenerateOptions(**settings)
            else:
                render_wav(sparse_score(2), tmp_path / "x.wav", max_seconds=-1)
        assert "--" not in str(caught.value)


def test_web_primer_shows_the_seconds_generation_reads(silent_run, tmp_path) -> None:
    """Leading silence and long gaps are capped as generation caps them, not only the tail."""
    score = make_score([(480 * 100, 480, 60), (480 * 300, 480, 62)])  # 100 q lead, 199 q gap
    with web_client(silent_run.parent, tmp_path / "work") as client:
        files = {"file": ("gaps.mid", score.dumps_midi(), "audio/midi")}
        upload = client.post("/api/primers", files=files)
        assert upload.status_code == 200, upload.text
        assert upload.json()["seconds"] == pytest.approx((1 + 8 + 1) * 0.5)  # 120 bpm
        assert upload.json()["notes"] == 2 and upload.json()["tracks"] == 1
