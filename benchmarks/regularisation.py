"""Small-data regularisation (issue 20): train a few configurations for the same time on each of
up to three folders and compare them on held-out VALID pieces, never on test pieces.

    nohup python benchmarks/regularisation.py FOLDER [FOLDER ...] --work WORK --minutes 10 \\
        [--arms default,small,...] [--files N] [--threads N] > WORK.log 2>&1 &

FOLDER is a MIDI folder, or `builtin:NAME` / `builtin:NAME:N` for (the first N pieces of) a
collection `lstm-music corpus builtin` lists, converted once into its cache by this checkout's
code. Each folder is split like benchmarks/your_folder.py splits it (its train/valid/test
sub-folders, else its files shuffled with --seed, 80/10/10; `--files N` keeps the first N) and
prepared once (`prepare`, defaults). Each arm is `train CORPUS --out RUN --max-minutes M
--no-report --seed S` plus the arm's flags (ARMS below), then `evaluate RUN CORPUS --split
valid --json` and `--split train --json`: held-out bits per note, the gap between held-out and
training nats per token over the whole train split (scored as it is, without the augmentation
training saw), and whether the held-out report warns of overfitting (it judges by its own
sample of training pieces, whose figure can differ from the whole split's: both are kept in
result.json). Test pieces are split off and never read.

Resumable: everything lives under WORK/<folder>/; a finished arm's figures are kept in
<arm>/result.json and not run again, an arm killed mid-training is continued with `train
--resume` (its time budget counts the minutes already spent), a prepared corpus is reused.
Run it again with the same arguments after a kill or a reboot. The last lines are the table.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from your_folder import SRC, load_average, lstm_music, materialise, split_folder  # noqa: E402

# AWD-LSTM's regularisers at the rates tried (a little under the paper's, for one layer)
AWD = ["--weight-drop", "0.3", "--locked-dropout", "--input-dropout", "0.2"]
AWD += ["--embedding-dropout", "0.1", "--average", "0.999"]
BUDGET = ["--lr-schedule", "budget"]  # the learning rate annealed over the time budget
# arm -> `train` flags; `default` is today's default preset, the yardstick of the others
ARMS: dict[str, list[str]] = {
    "default": [],
    "small": ["--preset", "small"],
    "small-untied": ["--preset", "small", "--no-tie-weights", "--embedding", "256"],
    "default+awd": AWD,
    "default+average": ["--average", "0.999"],
    "dropout-0.5": ["--dropout", "0.5"],
    "default+budget": BUDGET,
    "budget-only": [*BUDGET, "--lr-decay", "1"],  # no halving on a stalled validation
    "awd+budget": [*AWD, *BUDGET, "--epochs", "200"],
    # fine-tuning the shipped base (the finetune preset), without and with the regularisers
    "finetune": ["--init", "base"],
    "finetune+awd": ["--init", "base", *AWD],
}


def folder_of(spec: str, files: int) -> tuple[Path, str]:
    """The MIDI folder a FOLDER argument names, and a label for its work folder."""
    if not spec.startswith("builtin:"):
        folder = Path(spec)
        if not folder.is_dir():
            sys.exit(f"{spec}: not a folder")
        return folder, folder.resolve().name + (f"-first{files}" if files else "")
    name, _, limit = spec[len("builtin:") :].partition(":")
    sys.path.insert(0, str(SRC))
    from lstm_music.corpus.builtin import builtin_folder

    folder = builtin_folder(name, int(limit) if limit else None, progress=False)
    return folder, f"builtin-{name}" + (f"-{limit}" if limit else "") + (
        f"-first{files}" if files else ""
    )


def corpus_for(folder: Path, work: Path, args: argparse.Namespace) -> Path:
    """WORK/corpus, prepared once from the split (its test pieces are never read here)."""
    corpus = work / "corpus"
    if (corpus / "corpus.json").exists():
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)  # a prepare killed half-way (ours, in WORK)
    splits, how = split_folder(folder, args.files, args.seed)
    (work / "split.txt").write_text(how + "\n")
    split = materialise(splits, work / "split")
    lstm_music(SRC, "prepare", str(split), "--out", str(corpus), "-q")
    return corpus


def evaluate(run: Path, corpus: Path, split: str) -> dict[str, Any]:
    return json.loads(
        lstm_music(SRC, "evaluate", str(run), str(corpus), "--split", split, "--json")
    )


def run_arm(name: str, corpus: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or continue) one arm and measure it; its result, also kept in result.json."""
    run, saved = work / name, work / name / "result.json"
    if saved.exists() and "report_gap_nats_per_token" in json.loads(saved.read_text()):
        return json.loads(saved.read_text())  # measured by this version: kept
    began, load = time.perf_counter(), load_average()
    if (run / "train_state.safetensors").exists():
        output = lstm_music(SRC, "train", "--resume", str(run), "-q", "--no-report")
    else:
        command = ["train", str(corpus), "--out", str(run), "--max-minutes", f"{args.minutes:g}"]
        command += ["--no-report", "-q", "--overwrite", "--seed", str(args.seed)]
        command += ["--threads", str(args.threads)] if args.threads else []
        output = lstm_music(SRC, *command, *ARMS[name])
    trained = time.perf_counter() - began
    valid, train = evaluate(run, corpus, "valid"), evaluate(run, corpus, "train")
    report = valid["report"].get("gap") or {}
    result = {
        "arm": name,
        "flags": ARMS[name],
        "summary": next((x for x in output.splitlines() if x.startswith("trained ")), ""),
        "train_wall_s": round(trained, 1),
        "load_before": load,
        "load_after": load_average(),
        "valid_bits_per_note": valid.get("bits_per_note"),
        "valid_nats_per_token": valid["nll_per_token"],
        "train_nats_per_token": train["nll_per_token"],
        "gap_nats_per_token": valid["nll_per_token"] - train["nll_per_token"],
        "report_gap_nats_per_token": report.get("gap"),
        "overfitting_warned": report.get("overfitting"),
    }
    saved.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _number(value: Any, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _yes(value: Any) -> str:
    return "-" if value is None else ("WARNED" if value else "no")


def print_table(results: dict[str, list[dict[str, Any]]]) -> None:
    """One block per folder: each arm's held-out figures beside the default arm's."""
    for label, rows in results.items():
        print(f"\n{label}")
        print(f"{'arm':<16} {'valid bits/note':>15} {'vs default':>10} {'valid nats/tok':>14} "
              f"{'train nats/tok':>14} {'gap':>7} {'rep.gap':>7} {'overfit':>7}  "
              "training")  # fmt: skip
        base = next((r["valid_bits_per_note"] for r in rows if r["arm"] == "default"), None)
        for row in rows:
            bits = row["valid_bits_per_note"]
            change = f"{bits / base - 1:+.1%}" if bits and base else "-"
            warned = _yes(row.get("overfitting_warned"))
            report = _number(row.get("report_gap_nats_per_token"))
            print(f"{row['arm']:<16} {_number(bits):>15} {change:>10} "
                  f"{_number(row['valid_nats_per_token']):>14} "
                  f"{_number(row['train_nats_per_token']):>14} "
                  f"{_number(row['gap_nats_per_token']):>7} {report:>7} {warned:>7}  "
                  f"{row['summary'][:60]}")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="MIDI folder or builtin:NAME")
    parser.add_argument("--work", type=Path, required=True, help="work folder (resumable)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per arm")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma list of {', '.join(ARMS)}")
    parser.add_argument("--files", type=int, default=0, help="only the first N files per folder")
    parser.add_argument("--threads", type=int, default=0, help="train --threads (0: its default)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed (0)")
    args = parser.parse_args()
    unknown = [arm for arm in args.arms.split(",") if arm not in ARMS]
    if unknown or len(args.folders) > 3:
        parser.error(f"unknown arms {unknown}" if unknown else "at most three folders")
    return args


def main() -> None:
    args = parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    for spec in args.folders:
        folder, label = folder_of(spec, args.files)
        work = args.work / label
        work.mkdir(parents=True, exist_ok=True)
        corpus = corpus_for(folder, work, args)
        for arm in args.arms.split(","):
            result = run_arm(arm, corpus, work, args)
            results.setdefault(label, []).append(result)
            bits, gap = result["valid_bits_per_note"], result["gap_nats_per_token"]
            print(f"{label} {arm}: valid {_number(bits)} bits/note, gap {_number(gap)} nats/token",
                  flush=True)  # fmt: skip
    print(f"\n{args.minutes:g} minutes per arm; load average now {load_average()}")
    print_table(results)


if __name__ == "__main__":
    main()
