"""`lstm-music demo`: three short pieces from the shipped model, as MIDI, WAV and PNG."""

from __future__ import annotations

import argparse
import time

from lstm_music.cli.table import format_table
from lstm_music.generation.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

DESCRIPTION = f"""\
Hear what lstm-music does without any MIDI files of your own: the model shipped in the package
(trained on Bach's chorales; `lstm-music models` lists it) writes three short pieces at the
default sampling (temperature {DEFAULT_TEMPERATURE:g}, top-p {DEFAULT_TOP_P:g}).
Each is saved as MIDI, rendered to WAV with a SoundFont synthesizer (FluidSynth; a simple
built-in synth with a warning when none is installed: see `lstm-music render --help`) and drawn
as a piano-roll PNG.
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="new music from the shipped model: MIDI, WAV and PNG",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", "-o", default="lstm-music-demo", help="folder (lstm-music-demo)")
    parser.add_argument("--model", help="shipped model name, checkpoint or run folder")
    parser.add_argument("--num", type=int, default=3, help="pieces (3)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each piece (20)")
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    parser.add_argument("--soundfont", metavar="FILE.sf2", help="SoundFont for the audio")
    parser.set_defaults(run=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from lstm_music.generation.demo import run_demo

    started = time.perf_counter()
    result = run_demo(args.out, args.model, args.num, args.seconds, args.seed, args.soundfont)
    total = time.perf_counter() - started
    rows = [
        (p.midi.name, p.wav.name, p.png.name, p.notes, _length(p.seconds, p.shortfall), p.engine)
        for p in result.pieces
    ]
    print(f"model {result.model}, seed {result.seed} (--seed {result.seed} repeats this)")
    print(format_table(("MIDI", "audio", "piano roll", "notes", "seconds", "synthesizer"), rows))
    for warning in result.warnings:
        print(f"warning: {warning}")
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items())
    print(f"written to {args.out}/ in {total:.1f} s ({stages})")
    return 0


def _length(seconds: float, shortfall: float) -> str:
    """The length in seconds, and how much short of the asked length when it fell short."""
    return f"{seconds:.1f}" + (f" ({shortfall:.1f} short)" if shortfall >= 0.05 else "")
