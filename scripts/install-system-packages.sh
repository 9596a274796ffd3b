#!/bin/sh
# Optional system packages, installed through the system's package manager where we may:
#   fluidsynth + timgm6mb-soundfont  real instrument sound for WAV files (`render`, `demo`)
#   chromium                         the headless browser of the web page's end-to-end test
# lstm-music works without them (a built-in synth with a warning; the browser test skips), so
# this script never fails: without apt-get, or without root or password-less sudo, it says what
# to install and goes on.
PACKAGES="fluidsynth timgm6mb-soundfont chromium"
if command -v fluidsynth >/dev/null 2>&1 && [ -e /usr/share/sounds/sf2/TimGM6mb.sf2 ] \
    && command -v chromium >/dev/null 2>&1; then
    echo "system packages: fluidsynth, TimGM6mb SoundFont and chromium already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: no apt-get here; for real instrument sound install FluidSynth and a"
    echo "General MIDI SoundFont yourself (macOS: brew install fluid-synth; then pass --soundfont)"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "system packages: not root; to hear real instruments run: sudo apt-get install $PACKAGES"
    exit 0
fi
echo "system packages: apt-get install $PACKAGES (about a minute)"
if $SUDO apt-get update -qq >/dev/null 2>&1 \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        $PACKAGES >/dev/null 2>&1; then
    echo "system packages: installed"
else
    echo "system packages: apt-get failed (offline?); lstm-music will use its built-in synth"
fi
exit 0
