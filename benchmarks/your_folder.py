"""Your own MIDI folder: train from scratch against fine-tuning the shipped base, same wall time.

    python benchmarks/your_folder.py FOLDER --minutes M [--files N] [--base NAME] [--threads N]
    python benchmarks/your_folder.py FOLDER --minutes M --baseline-src OLD/src   # + a third arm

1. split: FOLDER's train/ valid/ test/ sub-folders when it has train/ (a missing valid/ or
   test/ is drawn from train/ with --seed); otherwise its MIDI files (searched recursively,
   sorted; `--files N` keeps the first N, with sub-folders the first N of train/) are shuffled
   with --seed and split 80/10/10, at least one valid and one test file. The split is
   materialised as symlinks under WORK/split/{train,valid,test}, which `prepare` reads as the
   split (each source tree prepares its own corpus from that folder, `prepare -q`, defaults);
2. arms, one after the other on this machine, each `train CORPUS --out RUN --max-minutes M`
   (flags this script does not know are passed on to every `train`): `scratch`, this
   checkout's code, default preset; `finetuned`, the same plus `--init BASE` (the shipped model
   --base, default `base`, or a checkpoint path; `train` then picks its fine-tuning preset;
   copies are checked against the folder's train split only, not the base's own training
   music); `baseline`, scratch with the code of
   --baseline-src (an older checkout's src/ first on PYTHONPATH: its own prepare, train,
   evaluate, generate and compare, only flags that exist at 74d376a). A base that is not
   shipped, or a `train` without --init, prints `finetuned skipped: why` and reports nan;
3. each arm: `evaluate RUN CORPUS --split test --json` (held-out bits per note, from each
   tree's own evaluate); `generate RUN --num 10 --tokens T --seed S` at default sampling, no
   primer; `compare GENERATED --reference CORPUS --json` against the train split: the longest
   run of notes copied from one training piece (max over the pieces), pieces flagged copied,
   and each statistic's overlap next to the held-out yardstick (valid vs train), and the
   listening test (issue 20): a classifier's balanced accuracy telling the arm's pieces from
   the valid split's 4-bar excerpts (50%: indistinguishable by its features). `compare` is
   today's tree's for every arm, baseline included, so all arms are measured alike. Where
   `train` chose the run's default sampling by the listening test (recorded in the checkpoint,
   issue 20), the pieces are also generated at the fixed default (temperature 1, top-p 0.95)
   and their listening test is the row beside; the row after it says whether `train`'s
   closing report (report.json) warned of overfitting.
   Generated files whose MIDI division is under 24 ticks per quarter (REMI's `generate` wrote
   16 up to 74d376a, which `compare` refuses as corrupt) are resampled to 480 into a copy for
   `compare`; pieces without notes (they can copy nothing) or with times past symusic's int32
   ticks at 480 are left out of it. Both counts are printed.

Last line: `scratch_bits_per_note=X finetuned_bits_per_note=Y` (nan for an arm not run or
skipped); with the baseline arm, `baseline_scratch_bits_per_note=Z` on the line before it, or
as the last line when it is the only arm (`--arms baseline`).

The issue's goals (today's commit exported without touching git state):

    mkdir -p /tmp/base3a && git archive 3a0bfbf src | tar -x -C /tmp/base3a
    python benchmarks/your_folder.py ../shared/datasets/seed-midi --minutes 10 \\
        --baseline-src /tmp/base3a/src
    python benchmarks/your_folder.py ../shared/datasets/seed-midi --minutes 10 --files 20 \\
        --baseline-src /tmp/base3a/src
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
SPLITS = ("train", "valid", "test")
MIDI = (".mid", ".midi")
MIN_TPQ, TPQ = 24, 480  # `compare` refuses divisions under 24 ticks per quarter
COPY_LIMIT = 16  # goal: no generated piece copies a run of more than 16 notes
VERDICT = {True: "MET", False: "MISSED"}
DEFAULT_SAMPLING = (1.0, 0.95)  # generation's fixed default (temperature, top-p)


@dataclass
class Arm:
    """One way to train: its name, the code it runs (`src`) and the base it starts from."""

    name: str
    src: Path
    init: str | None = None
    skipped: str = ""
    results: dict[str, Any] = field(default_factory=dict)


def lstm_music(src: Path, *args: str) -> str:
    """The CLI of the tree `src` in a fresh interpreter; its stdout, or exit with its error."""
    path = os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, "-m", "lstm_music", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"lstm-music {args[0]} ({src}) failed:\n{result.stderr[-2000:]}")
    return result.stdout


def midi_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI and p.is_file())


def split_folder(folder: Path, limit: int, seed: int) -> tuple[dict[str, list[Path]], str]:
    """{split: files} and how it was made: FOLDER's sub-folders, or a seeded 80/10/10 split."""
    rng = random.Random(seed)
    if (folder / "train").is_dir():
        splits = {s: midi_files(folder / s) if (folder / s).is_dir() else [] for s in SPLITS}
        splits["train"] = splits["train"][:limit] if limit else splits["train"]
        how = f"{folder}'s train/valid/test sub-folders"
        for split in ("valid", "test"):
            if not splits[split]:
                rng.shuffle(splits["train"])
                splits[split], splits["train"] = splits["train"][:1], splits["train"][1:]
                how += f"; {split} drawn from train/ (seed {seed})"
        return splits, how + (f"; first {limit} train files" if limit else "")
    files = midi_files(folder)
    files = files[:limit] if limit else files
    if len(files) < 3:
        sys.exit(f"{folder}: {len(files)} MIDI file(s); a split needs at least 3")
    rng.shuffle(files)
    held = max(1, round(0.1 * len(files)))
    splits = {"test": files[:held], "valid": files[held : 2 * held], "train": files[2 * held :]}
    first = f"the first {limit} (sorted) of " if limit else ""
    return splits, f"{first}{folder}'s files shuffled with seed {seed}, 80/10/10"


def materialise(splits: dict[str, list[Path]], root: Path) -> Path:
    """WORK/split/{train,valid,test}/NNNNN-name.mid symlinks: a folder `prepare` splits so."""
    if root.exists():
        shutil.rmtree(root)
    for split, files in splits.items():
        (root / split).mkdir(parents=True)
        for index, path in enumerate(files):
            (root / split / f"{index:05d}-{path.name}").symlink_to(path.resolve())
    return root


def find_base(src: Path, base: str) -> tuple[str | None, str]:
    """(what to pass to --init, '') or (None, why the finetuned arm is skipped)."""
    helped = lstm_music(src, "train", "--help")
    if "--init" not in helped:
        return None, "this checkout's `train` has no --init"
    if base == "auto":  # issue 21: `train` scores every shipped base and starts from the best
        return ("auto", "") if "auto" in helped else (None, "this `train` has no --init auto")
    if Path(base).exists():
        return str(Path(base).resolve()), ""
    listed = json.loads(lstm_music(src, "models", "--json"))
    names = [model["name"] for model in listed]
    if base not in names:
        return None, f"no shipped model {base!r} (shipped: {', '.join(names) or 'none'})"
    return base, ""


def last_metrics(run: Path) -> dict[str, str]:
    """The last row of the run's metrics.csv (step, epoch, seconds, ...); {} when none."""
    path = run / "metrics.csv"
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    return rows[-1] if rows else {}


def train_arm(
    arm: Arm, corpus: Path, work: Path, args: argparse.Namespace, extra: list[str]
) -> Path:
    run = work / f"run-{arm.name}"
    command = ["train", str(corpus), "--out", str(run), "--max-minutes", f"{args.minutes:g}"]
    command += ["--overwrite", "-q"] + (["--threads", str(args.threads)] if args.threads else [])
    command += (["--init", arm.init] if arm.init else []) + extra
    arm.results["load_before"] = load_average()
    started = time.perf_counter()
    output = lstm_music(arm.src, *command)
    arm.results["train_wall"] = time.perf_counter() - started
    arm.results["load_after"] = load_average()
    arm.results["summary"] = next((x for x in output.splitlines() if x.startswith("trained ")), "")
    arm.results["metrics"] = last_metrics(run)
    return run


def for_compare(generated: Path, out: Path) -> tuple[list[Path], int, int]:
    """Copies `compare` reads: divisions under 24 resampled to 480; pieces without notes, or
    with times past what a MIDI file holds at 480, left out; (files, resampled, left out)."""
    import symusic

    out.mkdir(parents=True, exist_ok=True)
    kept, resampled, left_out = [], 0, 0
    for path in sorted(generated.glob("*.mid")):
        score, target = symusic.Score(str(path)), out / path.name
        try:
            if score.note_num() == 0:
                raise ValueError("no notes")
            if score.ticks_per_quarter < MIN_TPQ:
                score.resample(TPQ, min_dur=1).dump_midi(str(target))
                resampled += 1
            else:
                shutil.copyfile(path, target)
        except (ValueError, OverflowError):  # OverflowError: symusic's int32 ticks
            left_out += 1
            continue
        kept.append(target)
    return kept, resampled, left_out


def recorded_sampling(run: Path) -> dict[str, float]:
    """The default sampling `train` chose by the listening test and recorded in the run's best
    checkpoint ({} when none was chosen, or for an older tree that never chooses)."""
    from safetensors import safe_open

    path = run / "best.safetensors"
    if not path.exists():
        return {}
    with safe_open(str(path), "np") as stored:
        meta = json.loads((stored.metadata() or {}).get("lstm_music", "{}"))
    return meta.get("sampling") or {}


def overfitting_warned(run: Path) -> bool | None:
    """Whether `train`'s closing report (report.json) warned of overfitting; None: no report."""
    try:
        gap = json.loads((run / "report.json").read_text()).get("gap")
    except (OSError, ValueError):
        return None
    return None if gap is None else bool(gap.get("overfitting"))


def generate_and_compare(arm: Arm, run: Path, corpus: Path, work: Path, args) -> None:
    """`generate` at the run's default sampling (the one `train` chose, where it chose one),
    then `compare` with the corpus's train split; where the choice differs from the fixed
    default (temperature 1, top-p 0.95), the same again at that fixed default."""
    arm.results["sampling"] = recorded_sampling(run)
    arm.results["overfitting"] = overfitting_warned(run)
    arm.results.update(generated_pieces(arm, run, corpus, work, args, "generated", []))
    chosen = arm.results["sampling"]
    if chosen and (chosen.get("temperature"), chosen.get("top_p")) != DEFAULT_SAMPLING:
        fixed = ["--temperature", str(DEFAULT_SAMPLING[0]), "--top-p", str(DEFAULT_SAMPLING[1])]
        got = generated_pieces(arm, run, corpus, work, args, "fixed", fixed)
        arm.results["compare_fixed"] = got["compare"]
    else:  # the default is what was generated: the same pieces answer both
        arm.results["compare_fixed"] = arm.results["compare"]


def generated_pieces(
    arm: Arm, run: Path, corpus: Path, work: Path, args, label: str, flags: list[str]
) -> dict[str, Any]:
    """`generate` with `flags`, then today's `compare` for every arm (an older tree has no
    listening test): copies, statistics and the listening test against the corpus's valid
    split, measured alike for each arm."""
    folder = work / f"{label}-{arm.name}"
    shutil.rmtree(folder, ignore_errors=True)
    command = ["generate", str(run), "--out", str(folder / "piece.mid"), "--seed", str(args.seed)]
    lstm_music(arm.src, *command, "--num", str(args.pieces), "--tokens", str(args.tokens), *flags)
    got: dict[str, Any] = {"generated": len(list(folder.glob("*.mid")))}
    files, got["resampled"], got["left_out"] = for_compare(folder, work / f"{folder.name}-compare")
    command = ["compare", *map(str, files), "--reference", str(corpus), "--json"]
    got["compare"] = json.loads(lstm_music(SRC, *command)) if files else None
    return got


def run_arm(arm: Arm, corpus: Path, work: Path, args: argparse.Namespace, extra: list[str]) -> None:
    print(f"[{arm.name}] training {args.minutes:g} min ({arm.src})", file=sys.stderr, flush=True)
    run = train_arm(arm, corpus, work, args, extra)
    command = ["evaluate", str(run), str(corpus), "--split", "test", "--json"]
    arm.results["evaluate"] = json.loads(lstm_music(arm.src, *command))
    generate_and_compare(arm, run, corpus, work, args)


def prepare(src: Path, split: Path, out: Path) -> str:
    """One corpus per source tree, from the same split folder; its summary table."""
    output = lstm_music(src, "prepare", str(split), "--out", str(out), "-q")
    return "\n".join(x for x in output.splitlines() if not x.startswith("warning:")).strip()


def bits(arm: Arm | None) -> float:
    if arm is None or arm.skipped or "evaluate" not in arm.results:
        return math.nan
    value = arm.results["evaluate"].get("bits_per_note")
    return math.nan if value is None else float(value)


LABELS = (
    "steps / epochs (metrics.csv)",
    "train clock s / command wall s",
    "load average before -> after",
    "held-out (test) bits per note",
    "held-out NLL per token (nats)",
    "longest copied run (mean), notes",
    "pieces flagged copied",
    "pieces compared / generated",
    "resampled for compare (tpq < 24)",
    "listening test: accuracy [95%]",
    "  excerpts generated / valid",
    "  sampling (temperature, top-p)",
    "  at fixed default (1, 0.95)",
    "overfitting warning (report)",
)


def column(arm: Arm) -> list[str]:
    """One arm's cells, in LABELS order."""
    got, metrics = arm.results, arm.results["metrics"]
    cells = [
        f"{metrics.get('step', '-')} / {float(metrics.get('epoch') or 0):.2f}",
        f"{float(metrics.get('seconds') or 0):.0f} / {got['train_wall']:.0f}",
        f"{got['load_before'].split()[0]} -> {got['load_after'].split()[0]}",
        f"{bits(arm):.4f}",
        f"{got['evaluate']['nll_per_token']:.4f}",
    ]
    report, generated = got["compare"], got["generated"]
    chosen = got.get("sampling") or {}
    sampling = (
        f"chosen {chosen['temperature']:g}, {chosen['top_p']:g}" if chosen else "fixed default"
    )
    fixed = (got.get("compare_fixed") or {}).get("listening_test")
    warned = {True: "WARNED", False: "no", None: "-"}[got.get("overfitting")]
    tail = [sampling, listening_cells(fixed)[0], warned]
    if report is None:
        return [*cells, "-", "-", f"0/{generated}", str(got["resampled"]), "-", "-", *tail]
    runs = [p["longest_run"] for p in report["pieces"]]
    flagged = sum(bool(p["copied"]) for p in report["pieces"])
    copies = [f"{max(runs)} ({sum(runs) / len(runs):.1f})", f"{flagged}/{len(runs)}"]
    listening = listening_cells(report.get("listening_test"))
    counts = [f"{len(runs)}/{generated}", str(got["resampled"])]
    return [*cells, *copies, *counts, *listening, *tail]


def listening_cells(test: dict[str, Any] | None) -> list[str]:
    """The classifier's balanced accuracy with its interval (50%: these features cannot tell
    the arm's pieces from the valid split's), and the excerpt counts; "refused" when too few."""
    if not test:
        return ["-", "-"]
    counts = f"{test['generated_excerpts']} / {test['real_excerpts']}"
    if test.get("accuracy") is None:
        return ["refused", counts]
    return [f"{test['accuracy']:.0%} [{test['low']:.0%}-{test['high']:.0%}]", counts]


def print_table(arms: list[Arm]) -> None:
    """Measures down, arms across; then the statistics."""
    done = [arm for arm in arms if not arm.skipped]
    print()
    for arm in done:
        print(f"{arm.name}: {arm.src}; {arm.results['summary']}")
    columns = [column(arm) for arm in done]
    print(f"\n{'':34}" + "".join(f"{arm.name:>18}" for arm in done))
    for index, label in enumerate(LABELS):
        print(f"{label:34}" + "".join(f"{cells[index]:>18}" for cells in columns))
    print_statistics(done)


def print_statistics(arms: list[Arm]) -> None:
    """Each statistic's overlap with the train pieces, next to valid vs train (the yardstick)."""
    reports = [(a.name, a.results["compare"]) for a in arms if a.results.get("compare")]
    if not reports:
        return
    head = f"\n{'statistic: overlap, inside spread?':34} {'valid vs train':>14} {'spread':>11}"
    print(head + "".join(f"{name:>14}" for name, _ in reports))
    for index, stat in enumerate(reports[0][1]["statistics"]):
        yardstick = "-" if stat["valid_vs_train"] is None else f"{stat['valid_vs_train']:.3f}"
        spread = "-" if stat["spread"] is None else "{:.2f}-{:.2f}".format(*stat["spread"])
        cells = []
        for _, report in reports:
            own = report["statistics"][index]
            inside = {True: "yes", False: "NO", None: "-"}[own["inside"]]
            overlap = "-" if own["overlap"] is None else f"{own['overlap']:.3f}"  # no notes
            cells.append(f"{overlap:>5} {inside:>3}")
        line = f"{stat['title']:34} {yardstick:>14} {spread:>11}"
        print(line + "".join(f"{cell:>14}" for cell in cells))
    for name, report in reports:
        print(f"{name} compare verdict: {report['verdict']['text']}")
        if report.get("listening_test"):
            print(f"{name} listening test: {report['listening_test']['summary']}")


def print_goals(arms: dict[str, Arm]) -> None:
    scratch, tuned, base = (bits(arms.get(n)) for n in ("scratch", "finetuned", "baseline"))
    for text, ratio, goal in (
        ("finetuned / scratch", tuned / scratch, 0.85),
        ("scratch / baseline scratch", scratch / base, 0.90),
        ("finetuned / baseline scratch (issue 21)", tuned / base, 0.75),
    ):
        if not math.isnan(ratio):
            print(f"{text} bits per note: {ratio:.3f} (goal <= {goal}: {VERDICT[ratio <= goal]})")
    for arm in arms.values():
        report = None if arm.skipped else arm.results.get("compare")
        if report is not None:
            longest = max(p["longest_run"] for p in report["pieces"])
            verdict = VERDICT[longest <= COPY_LIMIT]
            print(
                f"{arm.name}: longest copied run {longest} notes (goal <= {COPY_LIMIT}: {verdict})"
            )
        if not arm.skipped and arm.results.get("overfitting") is not None:
            warned = "warned" if arm.results["overfitting"] else "did not warn"
            print(f"{arm.name}: the closing report {warned} of overfitting")
    tuned_arm = arms.get("finetuned")
    report = {} if tuned_arm is None else tuned_arm.results.get("compare") or {}
    accuracy = (report.get("listening_test") or {}).get("accuracy")
    if accuracy is not None:  # issue 21; at the sampling `train` chose, what a user gets
        verdict = VERDICT[accuracy <= 0.70]
        print(f"finetuned listening test {accuracy:.0%} (issue 21 goal <= 70%: {verdict})")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_machine(args: argparse.Namespace) -> None:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {cuda}; "
        f"python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads here; train --threads {args.threads or 'default'})"
    )
    print(f"load average (1, 5, 15 min) at start: {load_average()}")


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="your MIDI folder")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per arm (10)")
    parser.add_argument("--files", type=int, default=0, help="only the first N (sorted) files")
    parser.add_argument("--base", default="base",
                        help="shipped model (or checkpoint) to fine-tune; auto: `train --init "
                        "auto` picks among the shipped ones")  # fmt: skip
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src/: a third arm")
    parser.add_argument("--arms", help="comma list of scratch, finetuned, baseline (all given)")
    parser.add_argument("--threads", type=int, default=0, help="train --threads (0: its default)")
    parser.add_argument("--seed", type=int, default=0, help="split and generation seed (0)")
    parser.add_argument("--pieces", type=int, default=10, help="pieces generated per arm (10)")
    parser.add_argument("--tokens", type=int, default=512, help="tokens per piece (512)")
    parser.add_argument("--work", type=Path, help="work folder (kept; default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args, extra = parser.parse_known_args()  # unknown flags go to every `train`
    default = "baseline,scratch,finetuned" if args.baseline_src else "scratch,finetuned"
    args.arms = [a.strip() for a in (args.arms or default).split(",") if a.strip()]
    if unknown := set(args.arms) - {"scratch", "finetuned", "baseline"}:
        parser.error(f"--arms: unknown {', '.join(sorted(unknown))}")
    if "baseline" in args.arms and not args.baseline_src:
        parser.error("--arms baseline needs --baseline-src OLD/src")
    return args, extra


def make_arms(args: argparse.Namespace) -> list[Arm]:
    arms = []
    for name in args.arms:  # in the order given: they run one after the other
        arm = Arm(name, args.baseline_src.resolve() if name == "baseline" else SRC)
        if name == "finetuned":
            arm.init, arm.skipped = find_base(SRC, args.base)
        arms.append(arm)
    return arms


def main() -> None:
    args, extra = parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="your-folder-"))
    print_machine(args)
    splits, how = split_folder(args.folder, args.files, args.seed)
    split = materialise(splits, work / "split")
    counts = ", ".join(f"{s} {len(f)}" for s, f in splits.items())
    print(f"split: {how}: {counts} files ({split})")
    arms, corpora = make_arms(args), {}
    for arm in arms:
        if arm.skipped:
            print(f"{arm.name} skipped: {arm.skipped}")
            continue
        if arm.src not in corpora:
            corpora[arm.src] = work / f"corpus-{len(corpora)}"
            print(f"\ncorpus for {arm.src}:\n{prepare(arm.src, split, corpora[arm.src])}")
        run_arm(arm, corpora[arm.src], work, args, extra)
    print_table(arms)
    by_name = {arm.name: arm for arm in arms}
    print()
    print_goals(by_name)
    kept = bool(args.work or args.keep)
    if not kept:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average (1, 5, 15 min) at end: {load_average()}; work folder {work}", end="")
    print(" (kept)" if kept else " (removed; --keep keeps it)")
    if "baseline" in by_name:
        print(f"baseline_scratch_bits_per_note={bits(by_name['baseline']):.4f}")
    if set(by_name) - {"baseline"}:
        scratch, tuned = bits(by_name.get("scratch")), bits(by_name.get("finetuned"))
        print(f"scratch_bits_per_note={scratch:.4f} finetuned_bits_per_note={tuned:.4f}")


if __name__ == "__main__":
    main()
