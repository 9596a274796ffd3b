#!/bin/sh
# Optional system packages, installed through the system's package manager where we may:
#   fluidsynth + timgm6mb-soundfont  real instrument sound for WAV files (`render`, `demo`)
#   chromium                         the headless browser of the web page's end-to-end test
# lstm-music works without them (a built-in synth with a warning; the browser test skips), so
# this script never fails: without apt-get, or without root or password-less sudo, it says what
# to install and goes on. After apt-get it looks at what is really there, package by package:
# apt-get's exit status can be nonzero for reasons of its own (one repository failing to
# update, an unrelated broken package) while everything asked for was installed.
SF2_DIR="${LSTM_MUSIC_SF2_DIR:-/usr/share/sounds/sf2}" # Debian's place (another for tests)

has_fluidsynth() { command -v fluidsynth >/dev/null 2>&1; }
has_soundfont() { [ -e "$SF2_DIR/TimGM6mb.sf2" ]; }
has_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }

# what is missing now, as Debian package names
missing() {
    list=""
    has_fluidsynth || list="$list fluidsynth"
    has_soundfont || list="$list timgm6mb-soundfont"
    has_chromium || list="$list chromium"
    echo "${list# }"
}

hint() {
    case "$1" in
    fluidsynth | timgm6mb-soundfont) echo "lstm-music uses its built-in synth for WAV files" ;;
    chromium) echo "the web page's browser test skips" ;;
    esac
}

BEFORE="$(missing)"
if [ -z "$BEFORE" ]; then
    echo "system packages: fluidsynth, TimGM6mb SoundFont and chromium already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: no apt-get here; missing: $BEFORE. For real instrument sound install"
    echo "FluidSynth and a General MIDI SoundFont yourself (macOS: brew install fluid-synth;"
    echo "then pass --soundfont); without them lstm-music uses its built-in synth"
    exit 0
fi
if [ "$(id -u 2>/dev/null)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "system packages: not root; missing: $BEFORE; to hear real instruments run:"
    echo "  sudo apt-get install $BEFORE"
    exit 0
fi
echo "system packages: apt-get install $BEFORE (about a minute)"
# update and install each run whatever the other answers: a failed update of one repository
# must not keep the packages of the others from being installed
$SUDO apt-get update -qq >/dev/null 2>&1
UPDATE=$?
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    $BEFORE >/dev/null 2>&1
INSTALL=$?
AFTER="$(missing)"
for package in fluidsynth timgm6mb-soundfont chromium; do
    case " $BEFORE " in
    *" $package "*)
        case " $AFTER " in
        *" $package "*) echo "system packages: $package: missing ($(hint "$package"))" ;;
        *) echo "system packages: $package: installed" ;;
        esac
        ;;
    *) echo "system packages: $package: already present" ;;
    esac
done
if [ "$UPDATE" != 0 ] || [ "$INSTALL" != 0 ]; then
    if [ -n "$AFTER" ]; then
        echo "system packages: apt-get failed (update exit $UPDATE, install exit $INSTALL;" \
            "offline?); to retry: sudo apt-get update && sudo apt-get install $AFTER"
    else
        echo "system packages: apt-get reported errors (update exit $UPDATE, install exit" \
            "$INSTALL), but everything asked for is installed"
    fi
fi
exit 0
