"""Do the controls steer? Models trained with controls on a built-in corpus, measured on their MIDI.

    python benchmarks/controls.py --minutes 12 | --steps 1400 [--collection bach-chorales]

1. `prepare --builtin NAME` twice into WORK: with `--controls default` and without (the same
   files and split); and the collection's pieces "arranged" (below) with `--tracks instruments
   --controls default`; `train` the three for --minutes at once (default preset, 1 thread each);
2. held-out bits per note of the first two on the test split (`evaluate`; a controls corpus is
   scored without its control tokens, so both figures are "no controls given"): goal within 3%;
3. --pieces pieces per setting from the controls model (seed 1, --seconds each, default
   sampling), and the attribute achieved, measured on the decoded notes:
   density low / medium / high (notes per bar: strictly increasing, high >= 2x low);
   `--key-strict --key D-minor` (share of notes in D minor: goal 100%); `--key D-minor` as a
   control alone (goal >= 90%); no control (for reference); and density and key again with
   each `--guidance` value (generation.guidance: the controls pushed harder);
4. `--instruments` from the arranged model: for each ensemble, the share of pieces that play
   the asked instruments and only them (goal >= 90%).

No built-in collection has several instruments, so the benchmark makes one: each piece's
voices (a chorale's soprano, alto, tenor, bass) are given the instruments of one of ENSEMBLES,
chosen by a hash of the file name; the notes are the collection's own. It measures whether the
model plays what it is asked, not how an ensemble really writes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

D_MINOR = {2, 4, 5, 7, 9, 10, 0}  # D E F G A Bb C
# the instruments of the voices, top to bottom (General MIDI programs), and the words asked
ENSEMBLES = {
    "violin,viola,cello": (40, 40, 41, 42),
    "flute,oboe,clarinet,bassoon": (73, 68, 71, 70),
    "trumpet,trombone,tuba": (56, 56, 57, 58),
    "church organ,acoustic bass": (19, 19, 19, 32),
}
NAMES = ("controls", "plain", "arranged")


def arrange(source: Path, out: Path) -> int:
    """The source folder's MIDI files with their tracks given an ensemble's instruments (a
    piece with more tracks than the ensemble has voices gives the extra ones the last);
    returns the number of files written."""
    import hashlib

    import symusic

    out.mkdir(parents=True, exist_ok=True)
    programs = list(ENSEMBLES.values())
    written = 0
    for path in sorted(source.glob("*.mid")):
        score = symusic.Score(str(path))
        digest = hashlib.sha256(path.name.encode()).digest()
        ensemble = programs[digest[0] % len(programs)]
        for i, track in enumerate(score.tracks):
            track.program, track.is_drum = ensemble[min(i, len(ensemble) - 1)], False
        score.dump_midi(str(out / path.name))
        written += 1
    return written


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "lstm_music", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode:
        sys.exit(f"lstm-music {args[0]} failed: {done.stderr.strip()[-1500:]}")
    return done.stdout


def train_all(work: Path, minutes: float, steps: int | None) -> None:
    """The three models at once, for --minutes each, or for --steps each (the same work on a
    busy machine, where the same minutes would give whichever runs faster more steps)."""
    budget = ["--max-steps", str(steps)] if steps else ["--max-minutes", str(minutes)]
    runs = []
    for name in NAMES:
        command = [sys.executable, "-m", "lstm_music", "train", str(work / f"corpus-{name}"),
                   "--out", str(work / f"run-{name}"), *budget,
                   "--threads", "1", "-q", "--no-report", "--overwrite"]  # fmt: skip
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    for name, run in zip(NAMES, runs):
        out, _ = run.communicate()
        if run.returncode:
            sys.exit(f"train {name} failed")
        print(f"{name}: {out.strip().splitlines()[0]}")


def measure(checkpoint, settings: dict, pieces: int, seconds: float) -> dict:
    from lstm_music.evaluation.statistics import notes_of, notes_per_bar
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions

    options = SamplingOptions(seconds=seconds, num=pieces, seed=1, **settings)
    densities, in_key, notes = [], 0, 0
    for piece in generate(checkpoint, options):
        found = notes_of(piece.score)
        if len(found):
            densities.append(float(notes_per_bar(found).mean()))
        in_key += sum(int(p) % 12 in D_MINOR for p in found.pitch)
        notes += len(found)
    return {
        "notes_per_bar": sum(densities) / len(densities) if densities else 0.0,
        "in_d_minor": in_key / notes if notes else 0.0,
        "notes": notes,
    }


def measure_instruments(checkpoint, pieces: int, seconds: float) -> dict[str, tuple]:
    """Per ensemble: (share of pieces playing exactly the asked instruments, share playing all
    of them, share playing none other)."""
    from lstm_music.generation.generate import generate
    from lstm_music.generation.sampling import SamplingOptions
    from lstm_music.tokens.instruments import programs_named

    found = {}
    for words, _ in ENSEMBLES.items():
        asked = {programs_named(word)[0] for word in words.split(",")}
        options = SamplingOptions(seconds=seconds, num=pieces, seed=1, instruments=words)
        played = [{int(t.program) for t in piece.score.tracks if len(t.notes)}
                  for piece in generate(checkpoint, options)]  # fmt: skip
        count = len(played)
        found[words] = (sum(p == asked for p in played) / count,
                        sum(p >= asked for p in played) / count,
                        sum(p <= asked for p in played) / count)  # fmt: skip
    return found


def report_instruments(work: Path, pieces: int, seconds: float) -> None:
    from lstm_music.model.checkpoint import load_checkpoint

    found = measure_instruments(load_checkpoint(work / "run-arranged"), pieces, seconds)
    print(f"\n{'instruments asked':30} {'exactly':>8} {'all':>6} {'no other':>9}")
    for words, (exact, every, only) in found.items():
        print(f"{words:30} {exact:8.0%} {every:6.0%} {only:9.0%}")
    worst = min(exact for exact, _, _ in found.values())
    print(f"instruments: the asked set and only it in at least {worst:.0%} of pieces for every "
          f"ensemble (goal >= 90%: {'MET' if worst >= 0.9 else 'MISSED'})")  # fmt: skip


def report_guidance(checkpoint, values: str, pieces: int, seconds: float) -> None:
    """The density and key settings again with `--guidance` (the controls pushed harder)."""
    for guidance in [float(v) for v in values.split(",") if v.strip()]:
        found = [
            measure(checkpoint, {"density": level, "guidance": guidance}, pieces, seconds)
            for level in ("low", "medium", "high")
        ]
        low, medium, high = (result["notes_per_bar"] for result in found)
        key = measure(checkpoint, {"key": "D-minor", "guidance": guidance}, pieces, seconds)
        ratio = high / max(low, 1e-9)
        print(
            f"guidance {guidance:g}: density {low:.2f} / {medium:.2f} / {high:.2f} (high/low "
            f"{ratio:.2f}); key as a control {key['in_d_minor']:.1%}"
        )


def prepare_all(work: Path, collection: str) -> None:
    from lstm_music.corpus.builtin import builtin_folder

    base = ["--valid-fraction", "0.1", "--test-fraction", "0.1", "-q"]
    cli("prepare", "--builtin", collection, *base, "--out", str(work / "corpus-controls"),
        "--controls", "default")  # fmt: skip
    cli("prepare", "--builtin", collection, *base, "--out", str(work / "corpus-plain"))
    files = arrange(builtin_folder(collection), work / "arranged")
    print(f"arranged {files} pieces of {collection} for {len(ENSEMBLES)} ensembles")
    cli("prepare", str(work / "arranged"), *base, "--out", str(work / "corpus-arranged"),
        "--tracks", "instruments", "--controls", "default")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, help="train each model this many steps instead")
    parser.add_argument("--collection", default="bach-chorales")
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--guidance", default="2,3", help="guidance values also measured")
    parser.add_argument("--reuse", action="store_true", help="WORK's trained models as they are")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="controls-"))
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()}; work {work}")
    if not args.reuse:
        prepare_all(work, args.collection)
        train_all(work, args.minutes, args.steps)
    bits = {}
    for name in ("controls", "plain"):
        run, corpus = str(work / f"run-{name}"), str(work / f"corpus-{name}")
        report = json.loads(cli("evaluate", run, corpus, "--split", "test", "--json"))
        bits[name] = report["bits_per_note"]
    ratio = bits["controls"] / bits["plain"]
    print(f"held-out bits per note, no controls given: with controls {bits['controls']:.3f}, "
          f"without {bits['plain']:.3f}; ratio {ratio:.3f} (goal <= 1.03: "
          f"{'MET' if ratio <= 1.03 else 'MISSED'})")  # fmt: skip
    from lstm_music.model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(work / "run-controls")
    settings = {"none": {}, "density low": {"density": "low"},
                "density medium": {"density": "medium"}, "density high": {"density": "high"},
                "key D-minor (control)": {"key": "D-minor"},
                "key D-minor, strict": {"key": "D-minor", "key_strict": True}}  # fmt: skip
    results = {
        name: measure(checkpoint, s, args.pieces, args.seconds) for name, s in settings.items()
    }
    print(f"\n{'setting':24} {'notes/bar':>9} {'in D minor':>10} {'notes':>6}")
    for name, found in results.items():
        print(f"{name:24} {found['notes_per_bar']:9.2f} {found['in_d_minor']:10.1%} "
              f"{found['notes']:6d}")  # fmt: skip
    low, medium, high = (results[f"density {level}"]["notes_per_bar"]
                         for level in ("low", "medium", "high"))  # fmt: skip
    print(
        f"density increasing: {low < medium < high}; high/low {high / max(low, 1e-9):.2f} "
        f"(goal >= 2)"
    )
    print(
        f"key strict in D minor: {results['key D-minor, strict']['in_d_minor']:.1%} (goal 100%); "
        f"key as a control: {results['key D-minor (control)']['in_d_minor']:.1%} (goal >= 90%)"
    )
    report_guidance(checkpoint, args.guidance, args.pieces, args.seconds)
    report_instruments(work, args.pieces, args.seconds)


if __name__ == "__main__":
    main()
