"""`lstm-music render`: a MIDI file -> a WAV to listen to and a piano-roll PNG to look at."""

from __future__ import annotations

import argparse
import sys
import time

from lstm_music.errors import LstmMusicError

DESCRIPTION = """\
Listen to and look at a MIDI file: --wav writes audio (16-bit PCM), --png a piano roll (time
across in bars, or seconds with --seconds-axis; pitch up; darker = louder; a hue per track).

Audio engines, in the order tried (--engine picks one and fails if it cannot run):
  fluidsynth  the FluidSynth program with a General MIDI SoundFont (Debian/Ubuntu:
              apt install fluidsynth timgm6mb-soundfont; macOS: brew install fluid-synth)
  symusic     symusic's own SoundFont synthesizer, with the same SoundFont
  fallback    a simple built-in piano-ish synth (no drums): always works, sounds plain;
              used with a warning when no SoundFont engine is available

The SoundFont (.sf2/.sf3) is --soundfont PATH, else $LSTM_MUSIC_SOUNDFONT, else the first of
/usr/share/sounds/sf2/{TimGM6mb,FluidR3_GM,default-GM}.sf2,
/usr/share/soundfonts/{default,FluidR3_GM}.sf2 and the Homebrew soundfonts folders. A path
given by flag or variable that is not a SoundFont is an error.

Audio longer than --max-seconds (1800, half an hour) is cut there, with a warning, so that a
file with an absurd tempo cannot fill the disk.
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "render",
        help="MIDI -> WAV audio and a piano-roll PNG",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("midi", metavar="FILE.mid", help="MIDI file to render")
    parser.add_argument("--wav", metavar="OUT.wav", help="write the audio here")
    parser.add_argument("--png", metavar="OUT.png", help="write the piano roll here")
    parser.add_argument("--soundfont", metavar="PATH", help="General MIDI SoundFont (.sf2/.sf3)")
    parser.add_argument(
        "--sample-rate", type=int, default=44100, help="audio sample rate in Hz (44100)"
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "fluidsynth", "symusic", "fallback"),
        default="auto",
        help="audio engine (auto: the first that works, see above)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="render at most this much audio; longer scores are cut, with a warning (1800)",
    )
    parser.add_argument(
        "--seconds-axis", action="store_true", help="piano roll time in seconds, not bars"
    )
    parser.add_argument("--title", help="piano-roll title (default: the MIDI file's name)")
    parser.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lstm_music.render.audio import load_midi, render_wav
    from lstm_music.render.pianoroll import render_png

    if not args.wav and not args.png:
        raise LstmMusicError("nothing to do: give --wav OUT.wav, --png OUT.png or both")
    score = load_midi(args.midi)
    if args.wav:
        started = time.perf_counter()
        result = render_wav(
            score, args.wav, args.soundfont, args.sample_rate, args.engine, args.max_seconds
        )
        took = time.perf_counter() - started
        font = f" with {result.soundfont}" if result.soundfont else ""
        print(
            f"wrote {result.path}: {_clock(result.seconds)} of audio, "
            f"{result.engine}{font}, in {took:.1f} s"
        )
        if result.warning:
            print(f"lstm-music render: warning: {result.warning}", file=sys.stderr)
    if args.png:
        started = time.perf_counter()
        unit = "seconds" if args.seconds_axis else "bars"
        path = render_png(score, args.png, args.title or Path(args.midi).name, unit)
        took = time.perf_counter() - started
        print(f"wrote {path}: piano roll in {unit}, in {took:.1f} s")
    return 0


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"
