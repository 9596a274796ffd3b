"""`lstm-music generate`: a checkpoint -> new MIDI files."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_music.errors import LstmMusicError
from lstm_music.generation.masks import INSTRUMENT_NAMES, KEY_EXAMPLES
from lstm_music.generation.sampling import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    PRIMER_TOKENS,
    TOKENS_PER_SECOND_CAP,
    SamplingOptions,
)

if TYPE_CHECKING:
    from lstm_music.generation.pipeline import PieceFiles, WrittenPiece

MAX_SECONDS_TEXT = f"{DEFAULT_MAX_SECONDS:g} s"
DESCRIPTION = f"""\
Write new music with a trained model. CHECKPOINT is a .safetensors file, a run folder (its
best.safetensors is used) or the name of a model shipped in the package (`lstm-music models`);
without it, the default shipped model (Bach chorales) writes. One LSTM step per new token;
--num N writes N pieces in one batch (out-1.mid, out-2.mid, ...); --wav and --png add audio and a
piano roll of each (see `lstm-music render --help` for synthesizers and SoundFonts).

Primers: --primer FILE.mid continues your piece; --primer-corpus CORPUS starts from a random
window of the training data (as the original blog does), --primer-tokens long; without either,
the piece starts from nothing. The primer is part of the piece and takes at most half of it.

Length: --seconds and --bars give pieces of exactly that length (the model writes until it gets
there, up to --max-tokens); a piece that falls short says so and by how much. No piece is longer
than --max-seconds ({MAX_SECONDS_TEXT} unless raised), whatever the primer holds: a longer
--seconds is refused unless --max-seconds raises the cap. A long piece shows a progress bar.

Constraints (any model): --key D-minor --key-strict samples no pitch outside the scale,
--pitch-range 48..84 (or C3..C6) none outside the range, --instruments piano,bass,drums only
those instruments (models whose tokens name instruments). Drums are not pitches: the key and the
range leave them alone. A constraint the model cannot meet at all is refused before generating;
a piece that the constraints leave nothing to continue with ends there, and says so. The primer
is your music and is kept as it is.

Controls (models prepared with `prepare --controls`): --density low|medium|high|N (notes per
bar; the levels are the training corpus's 10th, 50th and 90th percentiles), --polyphony N or
LOW..HIGH (notes at once), --key D-minor alone (the scale's pitch classes): each bar is told
them after its bar line, and the model writes to them (they steer; --key-strict enforces).
A model prepared with the instruments control is also told --instruments at the start of the
piece, so it plays each of them (the mask keeps the others out in any case).
A control the model was not trained with is refused. --tempo sets the MIDI tempo, and the
model's tempo tokens where its tokenizer has them.
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate",
        help="write new MIDI with a trained model",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        nargs="?",
        help=".safetensors file, run folder or shipped model name (default: the shipped model)",
    )
    parser.add_argument(
        "--out", "-o", required=True, metavar="FILE.mid", help="MIDI file to write, or a folder/"
    )
    length = parser.add_argument_group(f"length (default {SamplingOptions.tokens} tokens)")
    length.add_argument(
        "--tokens", type=int, default=SamplingOptions.tokens, help="new tokens per piece"
    )
    length.add_argument("--seconds", type=float, help="length in seconds (timed tokenizers)")
    length.add_argument("--bars", type=float, help="length in bars (timed tokenizers)")
    length.add_argument(
        "--max-seconds",
        type=float,
        help=f"cap on every piece, primer included ({DEFAULT_MAX_SECONDS:g}); raise it for a "
        "longer --seconds",
    )
    length.add_argument(
        "--max-tokens",
        type=int,
        help=f"new-token cap for --seconds/--bars ({TOKENS_PER_SECOND_CAP} a second)",
    )
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument(
        "--greedy", action="store_true", help="always the most likely token (the blog's decoding)"
    )
    sampling.add_argument(
        "--temperature",
        type=float,
        default=SamplingOptions.temperature,
        help="below 1: safer, above 1: wilder (default: the model's choice by the listening "
        "test, recorded by `train` or `lstm-music evaluate --choose-sampling`, else "
        f"{DEFAULT_TEMPERATURE:g})",
    )
    sampling.add_argument(
        "--top-k",
        type=int,
        default=SamplingOptions.top_k,
        help="sample among the k likeliest (0 = all)",
    )
    sampling.add_argument(
        "--top-p",
        type=float,
        default=SamplingOptions.top_p,
        help="sample among the likeliest tokens covering this probability (default: the "
        f"model's choice, else {DEFAULT_TOP_P:g})",
    )
    sampling.add_argument("--seed", type=int, help="random seed: same seed, same music")
    sampling.add_argument(
        "--num",
        type=int,
        default=SamplingOptions.num,
        help="pieces to write, in one batch (%(default)s)",
    )
    _add_constraints(parser)
    primer = parser.add_argument_group("primer")
    primer.add_argument("--primer", metavar="FILE.mid", help="continue this MIDI file")
    primer.add_argument(
        "--primer-corpus",
        metavar="CORPUS",
        help="start from a random window of this corpus's training pieces",
    )
    primer.add_argument(
        "--only-new",
        action="store_true",
        help="write only the new music, not the primer, into the MIDI file",
    )
    primer.add_argument(
        "--primer-tokens",
        type=int,
        default=PRIMER_TOKENS,
        help="primer length in tokens (%(default)s)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--tempo",
        type=float,
        help="tempo in quarter notes per minute (the MIDI's, and the tempo tokens if any)",
    )
    output.add_argument("--program", type=int, help="General MIDI instrument, 0-127 (0 = piano)")
    output.add_argument(
        "--wav",
        nargs="?",
        const=True,
        metavar="OUT.wav",
        help="also write audio (alone: beside the MIDI file, same name)",
    )
    output.add_argument(
        "--png",
        nargs="?",
        const=True,
        metavar="OUT.png",
        help="also draw the piano roll (alone: beside the MIDI file)",
    )
    output.add_argument("--soundfont", metavar="FILE.sf2", help="SoundFont for --wav")
    output.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    output.add_argument("--print-tokens", action="store_true", help="print the generated tokens")
    parser.set_defaults(run=run_generate)


def _add_constraints(parser: argparse.ArgumentParser) -> None:
    """The hard constraints: masks on the sampled tokens, for any model."""
    group = parser.add_argument_group("constraints (any model)")
    families = ", ".join(INSTRUMENT_NAMES)
    group.add_argument(
        "--key",
        metavar="KEY",
        help=f"a key: {KEY_EXAMPLES}, c-minor, ... (with --key-strict, or alone as a control)",
    )
    group.add_argument(
        "--key-strict", action="store_true", help="no pitch outside the --key's scale"
    )
    group.add_argument(
        "--pitch-range",
        metavar="LOW..HIGH",
        help="no pitch outside: MIDI numbers (48..84) or note names (C3..C6, C4 = 60)",
    )
    group.add_argument(
        "--instruments",
        metavar="LIST",
        help=f"only these, comma-separated: GM programs 0-127, -1 drums, or {families}",
    )
    group = parser.add_argument_group("controls (models prepared with --controls)")
    group.add_argument(
        "--density",
        metavar="LEVEL",
        help="notes per bar: low, medium, high (the training corpus's levels) or a number",
    )
    group.add_argument(
        "--polyphony", metavar="N", help="notes at once: at most N (3), or LOW..HIGH (2..4)"
    )
    group.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        metavar="G",
        help="how strongly the controls steer: 1 (default) follows the model as trained; 2-3 "
        "push each step away from what it would write unsteered (twice the work per token)",
    )


def output_paths(out: str, num: int, suffix: str = ".mid") -> list[Path]:
    """The files of `num` pieces: `out`, or out-1.mid, out-2.mid, ...; a folder (one that is
    there, or a path ending in /) gets piece.mid (piece-1.mid, ...) inside."""
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir():
        path = path / f"piece{suffix}"
    if num == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix or suffix}") for i in range(1, num + 1)]


def sampling_options(args: argparse.Namespace) -> SamplingOptions:
    """The flags as the library's options (the primer is added once the model is loaded)."""
    return SamplingOptions(
        tokens=args.tokens,
        seconds=args.seconds,
        bars=args.bars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        num=args.num,
        seed=args.seed,
        tempo=args.tempo,
        program=args.program,
        include_primer=not args.only_new,
        max_seconds=args.max_seconds,
        max_tokens=args.max_tokens,
        key=args.key,
        key_strict=args.key_strict,
        pitch_range=args.pitch_range,
        instruments=args.instruments,
        density=args.density,
        polyphony=args.polyphony,
        guidance=args.guidance,
        primer_tokens=args.primer_tokens,
    )


def piece_files(args: argparse.Namespace) -> Callable[[int], PieceFiles]:
    """Where piece i goes: --out (numbered when --num > 1), --wav and --png beside it or named."""
    from lstm_music.generation.pipeline import PieceFiles

    midis = output_paths(args.out, args.num)

    def target(flag, index: int, suffix: str) -> Path | None:
        if not flag:
            return None
        return (
            midis[index].with_suffix(suffix)
            if flag is True
            else output_paths(flag, args.num, suffix)[index]
        )

    def where(index: int) -> PieceFiles:
        return PieceFiles(
            midis[index], target(args.wav, index, ".wav"), target(args.png, index, ".png")
        )

    return where


def run_generate(args: argparse.Namespace) -> int:
    from lstm_music.generation.pipeline import RenderSettings, check_writable, write_pieces
    from lstm_music.generation.primers import corpus_primer, midi_primer
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.model.shipped import resolve_checkpoint
    from lstm_music.training.distributed import pick_device

    if args.primer and args.primer_corpus:
        raise LstmMusicError("choose one of --primer and --primer-corpus")
    options = sampling_options(args)
    files = piece_files(args)
    for index in range(options.num):  # a folder or a file in the way: said before any work
        for path in vars(files(index)).values():
            if isinstance(path, Path):
                check_writable(path)
    checkpoint = load_checkpoint(resolve_checkpoint(args.checkpoint), pick_device(args.device))
    if args.primer:
        options.primer = midi_primer(args.primer, checkpoint, options.primer_tokens)
    elif args.primer_corpus:
        options.primer = corpus_primer(
            args.primer_corpus, checkpoint, options.primer_tokens, args.seed
        )
    render = RenderSettings(soundfont=args.soundfont)
    written = write_pieces(
        checkpoint,
        options,
        files,
        render,
        on_written=lambda piece: print_piece(piece, args.print_tokens),
        on_progress=ProgressBar(),
    )
    new_tokens = sum(piece.new_tokens for piece in written.pieces)
    seconds = written.generate_seconds
    print(
        f"generated {new_tokens} tokens in {seconds:.2f} s "
        f"({1000 * seconds / max(new_tokens, 1):.3f} ms per token)"
    )
    return 0


class ProgressBar:
    """generate's progress on stderr, once it has run a few seconds (a terminal only: a log
    gets no carriage returns); cleared when done."""

    def __init__(self, after: float = 3.0, width: int = 30, stream=None) -> None:
        self.started, self.after, self.width = time.monotonic(), after, width
        self.stream = stream or sys.stderr
        self.shown = False

    def __call__(self, fraction: float) -> None:
        spent = time.monotonic() - self.started
        if fraction >= 1:
            if self.shown:
                self.stream.write("\r" + " " * (self.width + 40) + "\r")
                self.stream.flush()
            return
        if spent < self.after or not self.stream.isatty():
            return
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\rgenerating [{bar}] {100 * fraction:3.0f}%  {spent:,.0f} s")
        self.stream.flush()
        self.shown = True


def print_piece(piece: WrittenPiece, print_tokens: bool) -> None:
    """What was written for one piece, its warnings with the flag that helps, its files."""
    print(
        f"{piece.files.midi}: {piece.new_tokens} new tokens (+{piece.primer_length} primer), "
        f"{piece.notes} notes, {piece.seconds:.1f} s"
    )
    for warning in piece.warnings:
        print(f"  warning: {warning}")
    if piece.token_cap_reached:
        print("  (--max-tokens raises the cap of new tokens)")
    if print_tokens:
        print(" ".join(piece.tokens))
    if piece.audio is not None:
        audio = piece.audio
        print(f"  {audio.path}: {audio.seconds:.1f} s of audio ({audio.engine})")
        if audio.warning:
            print(f"  warning: {audio.warning}")
    if piece.files.png is not None:
        print(f"  {piece.files.png}: piano roll")
