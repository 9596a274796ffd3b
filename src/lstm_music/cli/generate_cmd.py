"""`lstm-music generate`: a checkpoint -> new MIDI files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lstm_music.errors import LstmMusicError

DESCRIPTION = """\
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
than --max-seconds (600 s unless --seconds asks for more), whatever the primer holds.
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
    parser.add_argument("--out", "-o", required=True, metavar="FILE.mid", help="MIDI file to write")
    length = parser.add_argument_group("length (default 512 tokens)")
    length.add_argument("--tokens", type=int, default=512, help="new tokens per piece")
    length.add_argument("--seconds", type=float, help="length in seconds (timed tokenizers)")
    length.add_argument("--bars", type=float, help="length in bars (timed tokenizers)")
    length.add_argument(
        "--max-seconds", type=float, help="cap on every piece, primer included (600, or --seconds)"
    )
    length.add_argument(
        "--max-tokens", type=int, help="new-token cap for --seconds/--bars (300 a second)"
    )
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument(
        "--greedy", action="store_true", help="always the most likely token (the blog's decoding)"
    )
    sampling.add_argument(
        "--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (1.0)"
    )
    sampling.add_argument(
        "--top-k", type=int, default=0, help="sample among the k likeliest (0 = all)"
    )
    sampling.add_argument(
        "--top-p",
        type=float,
        default=0.95,
        help="sample among the likeliest tokens covering this probability (0.95)",
    )
    sampling.add_argument("--seed", type=int, help="random seed: same seed, same music")
    sampling.add_argument("--num", type=int, default=1, help="pieces to write, in one batch (1)")
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
        "--primer-tokens", type=int, default=100, help="primer length in tokens (100)"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--tempo", type=float, help="tempo in quarter notes per minute")
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


def output_paths(out: str, num: int) -> list[Path]:
    path = Path(out)
    if num == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix or '.mid'}") for i in range(1, num + 1)]


def run_generate(args: argparse.Namespace) -> int:
    from lstm_music.generation.generate import GenerateOptions, generate
    from lstm_music.generation.primers import corpus_primer, midi_primer
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.model.shipped import resolve_checkpoint
    from lstm_music.training.distributed import pick_device

    if args.primer and args.primer_corpus:
        raise LstmMusicError("choose one of --primer and --primer-corpus")
    options = GenerateOptions(
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
    )
    checkpoint = load_checkpoint(resolve_checkpoint(args.checkpoint), pick_device(args.device))
    if args.primer:
        options.primer = midi_primer(args.primer, checkpoint, args.primer_tokens)
    elif args.primer_corpus:
        options.primer = corpus_primer(
            args.primer_corpus, checkpoint, args.primer_tokens, args.seed
        )
    started = time.perf_counter()
    pieces = generate(checkpoint, options)
    seconds = time.perf_counter() - started
    for number, (path, piece) in enumerate(zip(output_paths(args.out, args.num), pieces)):
        path.parent.mkdir(parents=True, exist_ok=True)
        piece.score.dump_midi(str(path))
        new, notes = len(piece.tokens) - piece.primer_length, piece.score.note_num()
        print(
            f"{path}: {new} new tokens (+{piece.primer_length} primer), {notes} notes, "
            f"{piece.seconds:.1f} s"
        )
        for warning in piece.warnings:
            hint = " (use --max-tokens)" if "larger token cap" in warning else ""
            print(f"  warning: {warning}{hint}")
        if args.print_tokens:
            print(" ".join(piece.tokens))
        render_outputs(piece.score, path, args, number)
    new_tokens = sum(len(p.tokens) - p.primer_length for p in pieces)
    print(
        f"generated {new_tokens} tokens in {seconds:.2f} s "
        f"({1000 * seconds / max(new_tokens, 1):.3f} ms per token)"
    )
    return 0


def render_outputs(score, midi: Path, args: argparse.Namespace, number: int) -> None:
    """--wav and --png: audio and a piano roll of piece `number`."""
    if not (args.wav or args.png):
        return
    from lstm_music.render.audio import render_png, render_wav

    def target(flag, suffix: str) -> Path:
        if flag is True:
            return midi.with_suffix(suffix)
        return output_paths(flag, args.num)[number]

    if args.wav:
        result = render_wav(score, target(args.wav, ".wav"), soundfont=args.soundfont)
        print(f"  {result.path}: {result.seconds:.1f} s of audio ({result.engine})")
        if result.warning:
            print(f"  warning: {result.warning}")
    if args.png:
        print(f"  {render_png(score, target(args.png, '.png'), title=midi.name)}: piano roll")
