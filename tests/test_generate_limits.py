"""generate's numbers, cap, progress and output paths: every number bounded where the options
are made; the documented 600 s cap holds unless max_seconds raises it; a long piece reports
progress (the library through a callback, the CLI with a bar on stderr); --out may be a folder,
and a path that cannot be written is refused before any music is generated."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import lstm_music.model.checkpoint as checkpoint_module
from lstm_music.cli import main
from lstm_music.errors import SettingError
from lstm_music.generation.generate import generate
from lstm_music.generation.sampling import SamplingOptions
from lstm_music.model.checkpoint import load_checkpoint
from lstm_music.model.shipped import resolve_checkpoint


@pytest.fixture(scope="module")
def bach():
    return load_checkpoint(resolve_checkpoint("bach-chorales"))


@pytest.mark.parametrize(
    ("settings", "setting"),
    [({"seconds": 1e308}, "seconds"), ({"bars": 1e308}, "bars"), ({"tempo": 1e308}, "tempo"),
     ({"tempo": 0.0001}, "tempo"), ({"temperature": 1e308}, "temperature"),
     ({"temperature": 1e-300}, "temperature"), ({"seed": -1}, "seed"), ({"num": 10**9}, "num"),
     ({"tokens": 10**5000}, "tokens"), ({"primer_tokens": 0}, "primer_tokens"),
     ({"pitch_range": "9" * 5000}, "pitch_range"), ({"density": 10**5000}, "density"),
     ({"polyphony": "9" * 5000}, "polyphony"), ({"instruments": "9" * 5000}, "instruments"),
     ({"program": 5, "instruments": "bass"}, "program"),
     ({"tokens": 10**6, "num": 100}, "num")],
)  # fmt: skip
def test_numbers_out_of_bounds_are_refused_in_one_line(settings, setting) -> None:
    with pytest.raises(SettingError) as error:
        SamplingOptions(**settings)
    assert error.value.setting == setting and "\n" not in str(error.value)
    assert len(str(error.value)) < 300  # a number of 5,000 digits is not printed whole


def test_the_documented_cap_holds_unless_raised() -> None:
    with pytest.raises(SettingError, match="over the 600 s cap") as error:
        SamplingOptions(seconds=100_000)
    assert error.value.setting == "max_seconds"
    assert SamplingOptions(seconds=900, max_seconds=900).cap_seconds == 900
    assert SamplingOptions(seconds=1e5, max_seconds=1e5).token_budget() == 30_000_000


def test_the_cli_names_max_seconds(capsys) -> None:
    assert main(["generate", "--out", "x.mid", "--seconds", "100000"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("(--max-seconds)"), lines


@pytest.mark.parametrize("length", [{"tokens": 700}, {"seconds": 12}])
def test_progress_is_reported_and_changes_nothing(bach, length) -> None:
    heard: list[float] = []
    options = SamplingOptions(seed=4, num=2, **length)
    with_progress = generate(bach, options, on_progress=heard.append)
    without = generate(bach, SamplingOptions(seed=4, num=2, **length))
    assert [p.tokens for p in with_progress] == [p.tokens for p in without]
    assert len(heard) >= 3 and heard[-1] == 1.0 and all(0 <= f <= 1 for f in heard)
    assert heard == sorted(heard) or length.get("seconds")  # projected: nearly monotonic


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_on_a_terminal_only() -> None:
    from lstm_music.cli.generate_cmd import ProgressBar

    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar(after=0, stream=stream)
        bar(0.5)
        bar(1.0)
    assert "generating [" in terminal.getvalue() and " 50%" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r") and log.getvalue() == ""


def test_out_a_folder_writes_into_it(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pieces"
    folder.mkdir()
    assert main(["generate", "--out", str(folder), "--tokens", "40", "--seed", "1", "--png"]) == 0
    assert (folder / "piece.mid").is_file() and (folder / "piece.png").is_file()
    assert main(["generate", "--out", f"{tmp_path}/new/", "--tokens", "40", "--num", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["piece-1.mid", "piece-2.mid"]


@pytest.mark.parametrize("flags", [["--out", "FILE/x.mid"],
                                   ["--out", "x.mid", "--wav", "FILE/a.wav"],
                                   ["--out", "x.mid", "--png", "FILE/y.png"]])  # fmt: skip
def test_unwritable_paths_are_refused_before_generating(tmp_path, monkeypatch, capsys, flags):
    (tmp_path / "FILE").write_text("a file")
    (tmp_path / "DIR").mkdir()
    monkeypatch.chdir(tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(checkpoint_module, "load_checkpoint", never)
    assert main(["generate", *flags]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0], lines


def test_demo_refuses_a_file_as_its_folder(tmp_path, capsys) -> None:
    (tmp_path / "taken").write_text("a file")
    assert main(["demo", "--out", str(tmp_path / "taken"), "--num", "1"]) == 1
    assert "cannot write a folder" in capsys.readouterr().err
