"""Listening and looking: WAV rendering (SoundFont engines and the built-in synth), piano rolls."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import symusic
from conftest import make_score, random_melody, write_midi

from lstm_music.cli import main
from lstm_music.errors import LstmMusicError
from lstm_music.render import audio as render
from lstm_music.render import pianoroll
from lstm_music.render.audio import (
    NO_SOUNDFONT,
    SOUNDFONT_ENV,
    find_soundfont,
    render_midi_file,
    render_wav,
)
from lstm_music.render.pianoroll import render_png
from lstm_music.render.synth import PEAK, RELEASE_SECONDS, replacing

RATE = 22050
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_samples(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples (channels averaged) and the sample rate of a 16-bit WAV."""
    with wave.open(str(path), "rb") as file:
        assert file.getsampwidth() == 2
        frames = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
        channels, rate = file.getnchannels(), file.getframerate()
    return frames.reshape(-1, channels).mean(axis=1) / 32768.0, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def fake_soundfont(path: Path) -> Path:
    """A file with a SoundFont's RIFF header (enough for the search, not for a synthesizer)."""
    path.write_bytes(b"RIFF\x10\x00\x00\x00sfbkLIST" + bytes(64))
    return path


@pytest.fixture
def no_soundfont(monkeypatch, tmp_path):
    """A machine without SoundFonts: no environment variable, no file at the usual places."""
    monkeypatch.delenv(SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", (str(tmp_path / "absent.sf2"),))


def real_soundfont(monkeypatch) -> Path:
    """The installed General MIDI SoundFont and fluidsynth, or skip."""
    monkeypatch.delenv(SOUNDFONT_ENV, raising=False)
    if shutil.which("fluidsynth") is None:
        pytest.skip("the fluidsynth program is not installed (apt install fluidsynth)")
    font = find_soundfont()
    if font is None:
        pytest.skip("no General MIDI SoundFont installed (apt install timgm6mb-soundfont)")
    return font


# 120 bpm, 480 ticks per quarter: a note of 0.5 s, 2 s of silence, a note of 0.5 s, end at 3 s
GAPPED = [(0, 480, 60), (2400, 480, 67)]


def test_fallback_writes_a_wav_of_the_right_length_with_silence_between_notes(tmp_path):
    path = tmp_path / "out" / "gap.wav"
    result = render_wav(make_score(GAPPED), path, sample_rate=RATE, engine="fallback")
    assert (result.engine, result.soundfont, result.warning) == ("fallback", None, None)
    samples, rate = read_samples(result.path)
    assert rate == RATE
    assert len(samples) / rate == pytest.approx(3.0 + RELEASE_SECONDS, abs=0.01)
    assert result.seconds == pytest.approx(len(samples) / rate)
    assert rms(samples[: RATE // 2]) > 0.05  # the first note sounds
    assert rms(samples[int(2.5 * RATE) : int(3.0 * RATE)]) > 0.05  # and the second
    gap = samples[int((0.5 + RELEASE_SECONDS + 0.01) * RATE) : int(2.49 * RATE)]
    assert np.abs(gap).max() == 0  # silence where no note sounds
    assert np.abs(samples).max() == pytest.approx(PEAK, abs=0.01)  # normalised, never clipped


def test_fallback_velocity_sets_loudness(tmp_path):
    score = make_score([(0, 960, 60)], velocity=30)
    score.tracks[0].notes.append(symusic.Note(1920, 960, 60, 120))
    samples, _ = read_samples(render_wav(score, tmp_path / "v.wav", None, RATE, "fallback").path)
    soft, loud = rms(samples[: RATE // 2]), rms(samples[2 * RATE : 2 * RATE + RATE // 2])
    assert loud > 3 * soft > 0


def test_fallback_renders_two_minutes_of_four_parts(tmp_path):
    rng = random.Random(0)
    score = symusic.Score(480)
    for base in (72, 64, 55, 43):
        track = symusic.Track("voice", 0, False)
        for i in range(240):  # quarter notes at 120 bpm: two minutes
            track.notes.append(symusic.Note(i * 480, 480, base + rng.randint(-5, 5), 80))
        score.tracks.append(track)
    result = render_wav(score, tmp_path / "long.wav", engine="fallback")  # speed: benchmarks/
    assert result.seconds == pytest.approx(120 + RELEASE_SECONDS, abs=0.01)


def test_no_soundfont_falls_back_with_a_warning(tmp_path, no_soundfont):
    assert find_soundfont() is None
    result = render_wav(random_melody(1), tmp_path / "m.wav", sample_rate=RATE)
    assert (result.engine, result.warning) == ("fallback", NO_SOUNDFONT)
    assert rms(read_samples(result.path)[0]) > 0.02
    with pytest.raises(LstmMusicError, match="needs a SoundFont"):
        render_wav(random_melody(1), tmp_path / "f.wav", engine="fluidsynth")


def test_failing_soundfont_engines_fall_back_and_say_why(tmp_path, monkeypatch):
    def broken(*args):
        raise render._EngineFailed("broken on purpose")

    monkeypatch.setattr(render, "_fluidsynth", broken)
    monkeypatch.setattr(render, "_symusic", broken)
    font = fake_soundfont(tmp_path / "font.sf2")
    result = render_wav(random_melody(2), tmp_path / "m.wav", font, RATE)
    assert result.engine == "fallback"
    assert "fluidsynth: broken on purpose; symusic: broken on purpose" in result.warning
    with pytest.raises(LstmMusicError, match="symusic could not render: broken on purpose"):
        render_wav(random_melody(2), tmp_path / "s.wav", font, RATE, engine="symusic")


def test_drums_and_empty_scores_give_silence_and_a_warning(tmp_path, no_soundfont):
    drums = render_wav(make_score([(0, 480, 36)], drum=True), tmp_path / "d.wav", None, RATE)
    assert "drum tracks are not played" in drums.warning
    assert np.abs(read_samples(drums.path)[0]).max() == 0
    empty = render_wav(symusic.Score(480), tmp_path / "e.wav", None, RATE)
    assert "no notes" in empty.warning and empty.path.is_file()


def test_find_soundfont_order(tmp_path, monkeypatch, no_soundfont):
    first, second = fake_soundfont(tmp_path / "a.sf2"), fake_soundfont(tmp_path / "b.sf2")
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", (str(tmp_path / "none.sf2"), str(second)))
    assert find_soundfont() == second
    monkeypatch.setenv(SOUNDFONT_ENV, str(first))
    assert find_soundfont() == first
    assert find_soundfont(second) == second
    with pytest.raises(LstmMusicError, match="no such SoundFont file"):
        find_soundfont(tmp_path / "missing.sf2")
    with pytest.raises(LstmMusicError, match="not a SoundFont"):
        find_soundfont(write_midi(tmp_path / "x.mid", random_melody(1)))
    monkeypatch.setenv(SOUNDFONT_ENV, str(tmp_path / "gone.sf2"))
    with pytest.raises(LstmMusicError, match=SOUNDFONT_ENV):
        find_soundfont()


def test_fluidsynth_renders_with_the_installed_soundfont(tmp_path, monkeypatch):
    font = real_soundfont(monkeypatch)
    midi = write_midi(tmp_path / "m.mid", make_score(GAPPED))
    result = render_midi_file(midi, tmp_path / "m.wav", sample_rate=RATE)
    assert (result.engine, result.soundfont, result.warning) == ("fluidsynth", font, None)
    samples, rate = read_samples(result.path)
    assert rate == RATE and result.seconds >= 3.0
    assert rms(samples[: RATE // 2]) > 0.02
    assert np.abs(samples).max() <= PEAK + 0.01


def test_fluidsynth_with_a_broken_soundfont_is_an_error_not_silence(tmp_path, monkeypatch):
    real_soundfont(monkeypatch)
    font = fake_soundfont(tmp_path / "broken.sf2")
    with pytest.raises(LstmMusicError, match="fluidsynth could not render"):
        render_wav(make_score(GAPPED), tmp_path / "b.wav", font, RATE, engine="fluidsynth")
    assert not (tmp_path / "b.wav").exists()


def test_render_wav_rejects_bad_options(tmp_path):
    with pytest.raises(LstmMusicError, match="engine must be one of"):
        render_wav(make_score(GAPPED), tmp_path / "x.wav", engine="timidity")
    with pytest.raises(LstmMusicError, match="sample rate"):
        render_wav(make_score(GAPPED), tmp_path / "x.wav", sample_rate=100)


def test_replacing_leaves_no_half_file(tmp_path):
    target = tmp_path / "sub" / "out.wav"
    with replacing(target) as temporary:
        temporary.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["out.wav"]


def image(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    return matplotlib.image.imread(path)


def test_render_png_draws_every_track_in_its_own_hue(tmp_path):
    from lstm_music.render.plots import STYLE, WIDE_FIGSIZE

    path = render_png(random_melody(3), tmp_path / "pics" / "roll.png", title="melody.mid")
    assert path.stat().st_size > 5000
    pixels = image(path)[..., :3]
    width, height = (round(size * STYLE["figure.dpi"]) for size in WIDE_FIGSIZE)
    assert pixels.shape[:2] == (height, width)  # the shared style's resolution
    blue = (pixels[..., 2] > pixels[..., 0] + 0.15).mean()  # first track: PALETTE's blue
    orange = (pixels[..., 0] > pixels[..., 2] + 0.15).mean()  # second track: orange
    assert blue > 0.005 and orange > 0.005
    assert sorted(p.name for p in path.parent.iterdir()) == ["roll.png"]


def test_render_png_in_seconds_and_for_an_empty_score(tmp_path):
    seconds = render_png(random_melody(4), tmp_path / "s.png", time_unit="seconds")
    assert (image(seconds)[..., :3] < 0.9).mean() > 0.01  # notes drawn, not a blank page
    empty = render_png(symusic.Score(480), tmp_path / "e.png", title="nothing")
    assert image(empty).shape[0] > 100
    with pytest.raises(LstmMusicError, match="time unit"):
        render_png(random_melody(4), tmp_path / "x.png", time_unit="beats")


def test_time_axes_follow_time_signatures_and_tempo_changes():
    score = make_score([(0, 480, 60), (5760, 480, 62)])  # notes in bars 1 and 5 of 3/4
    score.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    score.tempos.append(symusic.Tempo(1440, 60.0))  # 120 bpm for one bar, then 60
    to_bar, bar_lines, _ = pianoroll._time_axis(score, "bars")
    assert list(to_bar(np.array([0.0, 1440.0, 5760.0]))) == [1.0, 2.0, 5.0]
    assert list(bar_lines[:3]) == [1.0, 2.0, 3.0]
    to_seconds, _, _ = pianoroll._time_axis(score, "seconds")
    expected = score.to("second").tracks[0].notes.numpy()["time"]
    assert to_seconds(np.array([0.0, 5760.0])) == pytest.approx(expected)


def test_cli_render_writes_both_files_and_says_how(tmp_path, capsys, no_soundfont):
    midi = write_midi(tmp_path / "song.mid", random_melody(5))
    wav, png = tmp_path / "out" / "song.wav", tmp_path / "out" / "song.png"
    code = main(["render", str(midi), "--wav", str(wav), "--png", str(png), "--seconds-axis"])
    captured = capsys.readouterr()
    assert code == 0
    assert f"wrote {wav}: " in captured.out and "fallback" in captured.out
    assert f"wrote {png}: piano roll in seconds" in captured.out
    assert captured.err.strip() == f"lstm-music render: warning: {NO_SOUNDFONT}"
    assert wav.stat().st_size > 1000 and png.read_bytes()[:8] == PNG_MAGIC


def test_cli_errors_are_one_line(tmp_path, capsys):
    midi = write_midi(tmp_path / "song.mid", random_melody(6))
    wav = tmp_path / "song.wav"
    missing = tmp_path / "missing.sf2"
    assert main(["render", str(midi), "--wav", str(wav), "--soundfont", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no such SoundFont file: {missing}" in err
    assert not wav.exists()
    assert main(["render", str(midi)]) == 1
    assert "give --wav" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "nope.mid"), "--png", str(tmp_path / "x.png")]) == 1
    assert "no such MIDI file" in capsys.readouterr().err


def test_cli_engine_choices_match_the_library(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    help_text = capsys.readouterr().out
    assert "{" + ",".join(render.ENGINES) + "}" in help_text
    assert "LSTM_MUSIC_SOUNDFONT" in help_text and "TimGM6mb" in help_text


def test_fluidsynth_survives_more_simultaneous_notes_than_its_default_polyphony(
    tmp_path, monkeypatch
):
    """FluidSynth 2.3 with its default 256 voices never returns on 300 notes starting at once."""
    real_soundfont(monkeypatch)
    score = symusic.Score(480)
    track = symusic.Track("crowd", 0, False)
    for _ in range(300):
        track.notes.append(symusic.Note(0, 480, 60, 80))
    score.tracks.append(track)
    result = render_wav(score, tmp_path / "crowd.wav")
    assert result.engine == "fluidsynth" and result.warning is None


def test_drawing_never_imports_pyplot(tmp_path):
    """Pictures are `Figure` objects: a notebook's backend and figures are left alone."""
    code = (
        "import sys, symusic; from lstm_music.render.pianoroll import render_png; "
        "from lstm_music.render.plots import plot_distributions; s = symusic.Score(480); "
        "t = symusic.Track('p', 0, False); t.notes.append(symusic.Note(0, 480, 60, 80)); "
        f"s.tracks.append(t); render_png(s, {str(tmp_path / 'a.png')!r}); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
