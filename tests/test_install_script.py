"""scripts/install-system-packages.sh says what really happened, and never fails the set-up.

The script runs with a PATH of shell stubs only (apt-get, id, sudo), so no real package manager
is touched: the stub apt-get "installs" by creating the commands and the SoundFont it was asked
for (or not), and exits with the status the case asks for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-system-packages.sh"
SH = shutil.which("sh") or "/bin/sh"
PACKAGES = ("fluidsynth", "timgm6mb-soundfont", "chromium")


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{SH}\n{body}\n")
    path.chmod(0o755)


def _apt(folder: Path, sf2: Path, installs: bool, update_exit: int, install_exit: int) -> None:
    """A fake apt-get: `update` exits `update_exit`; `install` creates what it is asked for
    when `installs` (fluidsynth and chromium as commands, the SoundFont as a file)."""
    create = (
        f'for p in "$@"; do case "$p" in\n'
        f"  fluidsynth|chromium) printf '#!{SH}\\n' > '{folder}'/$p; chmod +x '{folder}'/$p ;;\n"
        f"  timgm6mb-soundfont) mkdir -p '{sf2}'; : > '{sf2}/TimGM6mb.sf2' ;;\n"
        "esac; done\n"
        if installs
        else ""
    )
    _stub(
        folder,
        "apt-get",
        f'PATH="$PATH:/usr/bin:/bin"  # its own tools only\n'
        f'case "$1" in update) exit {update_exit} ;; esac\n{create}exit {install_exit}',
    )


def _run(tmp_path: Path, present: tuple[str, ...] = (), **apt) -> subprocess.CompletedProcess:
    stubs, sf2 = tmp_path / "bin", tmp_path / "sf2"
    stubs.mkdir()
    _stub(stubs, "id", "echo 0")  # root: no sudo needed
    if apt:
        _apt(stubs, sf2, **apt)
    for name in present:
        if name == "timgm6mb-soundfont":
            sf2.mkdir(exist_ok=True)
            (sf2 / "TimGM6mb.sf2").write_bytes(b"")
        else:
            _stub(stubs, name, "exit 0")
    env = {"PATH": str(stubs), "LSTM_MUSIC_SF2_DIR": str(sf2), "HOME": str(tmp_path)}
    result = subprocess.run(
        [SH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr  # never fails the set-up
    return result


def _says(out: str, package: str) -> str:
    prefix = f"system packages: {package}:"
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return line.split(":", 2)[2].strip()


def test_apt_fails_but_everything_installed_says_installed(tmp_path) -> None:
    result = _run(tmp_path, installs=True, update_exit=100, install_exit=100)
    for package in PACKAGES:
        assert _says(result.stdout, package) == "installed"
    assert "apt-get failed" not in result.stdout
    assert "everything asked for is installed" in result.stdout


def test_apt_fails_and_nothing_installed_says_missing_with_hint(tmp_path) -> None:
    result = _run(tmp_path, installs=False, update_exit=0, install_exit=100)
    assert _says(result.stdout, "fluidsynth").startswith("missing (lstm-music uses its built-in")
    assert _says(result.stdout, "timgm6mb-soundfont").startswith("missing")
    assert _says(result.stdout, "chromium") == "missing (the web page's browser test skips)"
    assert "apt-get install fluidsynth timgm6mb-soundfont chromium" in result.stdout


def test_some_present_some_installed_some_missing(tmp_path) -> None:
    """A failed update no longer stops the install; each package is told apart."""
    result = _run(tmp_path, present=("chromium",), installs=True, update_exit=100, install_exit=0)
    assert _says(result.stdout, "chromium") == "already present"
    assert _says(result.stdout, "fluidsynth") == "installed"
    assert _says(result.stdout, "timgm6mb-soundfont") == "installed"


def test_no_apt_at_all(tmp_path) -> None:
    result = _run(tmp_path)
    assert "no apt-get here" in result.stdout
    assert "missing: fluidsynth timgm6mb-soundfont chromium" in result.stdout


def test_all_present_already(tmp_path) -> None:
    result = _run(tmp_path, present=PACKAGES)
    assert "already installed" in result.stdout


@pytest.mark.skipif(os.name != "posix", reason="a POSIX shell script")
def test_not_root_without_sudo_says_what_to_run(tmp_path) -> None:
    stubs = tmp_path / "bin"
    result = _run(tmp_path, installs=True, update_exit=0, install_exit=0)  # root: installs
    assert _says(result.stdout, "fluidsynth") == "installed"
    _stub(stubs, "id", "echo 1000")
    (stubs / "fluidsynth").unlink()
    env = {"PATH": str(stubs), "LSTM_MUSIC_SF2_DIR": str(tmp_path / "sf2")}
    again = subprocess.run([SH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0
    assert "not root; missing: fluidsynth" in again.stdout
    assert "sudo apt-get install fluidsynth" in again.stdout
