"""Training: the seed blog's objective against ours, side by side in one run, on one machine.

    python benchmarks/train.py [--data ../shared/datasets/seed-midi] [--work DIR]
    python benchmarks/train.py --quick      # smoke run: 10 files, 10 s budgets, 1 thread

Seed tokens, the blog's network (LSTM 512 -> 256, dropout 0.3, Adam 1e-3), two objectives: the
blog's (one-hot windows of 100 tokens across the concatenated training pieces, the 101st token the
only target) in plain PyTorch, and ours (`train`, seed preset: every position a target, state
carried), both scored on every position t >= 100 of each validation piece from tokens t-100..t-1
and a zero state. Then equal wall time, adding the default and seed presets on REMI tokens.
Each training runs in a child process (this script, `--role`) that reports its own peak RSS.
Training times exclude evaluation: the seed loop stops its clock while it evaluates; ours trains
in `--resume` legs, timed by the clock its checkpoints record and `--resume` carries on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "seed-midi"
CONTEXT = 100  # the blog's window: 100 tokens in, the 101st out
GB = 1024**3
VERDICT = {True: "MET", False: "MISSED"}
Predict = Callable[[torch.Tensor], torch.Tensor]  # ids (B, 100) -> logits of the next token


class SeedModel(nn.Module):
    """The blog's Keras model: one-hot (B, 100, V) -> LSTM 512 -> LSTM 256 -> Dense, last step."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.first = nn.LSTM(vocab, 512, batch_first=True)
        self.second = nn.LSTM(512, 256, batch_first=True)
        self.dropout = nn.Dropout(0.3)
        self.dense = nn.Linear(256, vocab)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x, _ = self.first(onehot)
        x, _ = self.second(self.dropout(x))
        return self.dense(self.dropout(x[:, -1]))

    def on_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self(one_hot(ids, self.dense.out_features))


def last_step(model: nn.Module) -> Predict:
    """Our model's next-token logits after `ids` (B, 100) run from a zero state."""
    return lambda ids: model(ids)[0][:, -1]


def one_hot(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """float32 one-hot without F.one_hot's int64 intermediate (twice the size)."""
    out = torch.zeros(*ids.shape, vocab)
    return out.scatter_(-1, ids.unsqueeze(-1), 1.0)


def windows(ids: np.ndarray, stride: int = 1) -> np.ndarray:
    """(N, 101) int64: every run of 101 consecutive ids (input 100, target 1)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) <= CONTEXT:
        return np.empty((0, CONTEXT + 1), dtype=np.int64)
    return np.lib.stride_tricks.sliding_window_view(ids, CONTEXT + 1)[::stride].copy()


def heldout(corpus_dir: str, stride: int) -> np.ndarray:
    """Windows of each validation piece on its own (none crosses two pieces)."""
    from lstm_music.corpus.store import Corpus

    pieces = Corpus.load(corpus_dir).split("valid")
    return np.concatenate([windows(p.ids, stride) for p in pieces])


@torch.no_grad()
def curve_point(name: str, model: nn.Module, predict: Predict, held: np.ndarray, seconds: float,
                steps: int) -> list[float]:  # fmt: skip
    """[seconds, mean NLL (nats), top-1 accuracy, steps] on the 101st token of held-out windows."""
    model.eval()
    nll, hits = 0.0, 0
    for chunk in torch.from_numpy(held).split(256):
        logits = predict(chunk[:, :CONTEXT]).float()
        nll += float(F.cross_entropy(logits, chunk[:, CONTEXT], reduction="sum"))
        hits += int((logits.argmax(-1) == chunk[:, CONTEXT]).sum())
    model.train()
    loss, accuracy = nll / len(held), hits / len(held)
    text = f"{seconds:.1f} s trained, step {steps}: held-out {loss:.3f}, accuracy {accuracy:.3f}"
    print(f"  [{name}] {text}", file=sys.stderr, flush=True)
    return [seconds, loss, accuracy, steps]


def shuffled(count: int, size: int) -> Iterator[torch.Tensor]:
    """Batches of window indices, reshuffled every epoch (Keras `fit(shuffle=True)`)."""
    generator = torch.Generator().manual_seed(0)
    while True:
        yield from torch.randperm(count, generator=generator).split(size)


def seed_data(spec: dict[str, Any], vocab: int, train: np.ndarray) -> dict[str, Any]:
    """The blog's training tensors, materialised up front when they fit `max_onehot_gb`."""
    size = len(train) * (CONTEXT + 1) * vocab * 4
    data: dict[str, Any] = {"windows": len(train), "onehot_gb": size / GB, "build_s": 0.0}
    data["materialised"] = size <= spec["max_onehot_gb"] * GB
    if data["materialised"]:  # inputs [:, :100] and targets [:, 100] in one tensor, same size
        started, ids = time.perf_counter(), torch.from_numpy(train).unsqueeze(-1)
        data["xy"] = torch.zeros(len(train), CONTEXT + 1, vocab)
        for rows in range(0, len(train), 1024):  # in place: no temporary copies
            data["xy"][rows : rows + 1024].scatter_(-1, ids[rows : rows + 1024], 1.0)
        data["build_s"] = time.perf_counter() - started
    return data


def role_seed(spec: dict[str, Any]) -> dict[str, Any]:
    """The blog's objective in plain PyTorch, for `budget_s` seconds of training."""
    from lstm_music.corpus.store import Corpus

    corpus = Corpus.load(spec["corpus"])
    vocab = len(corpus.vocabulary)
    train = windows(np.concatenate([p.ids for p in corpus.split("train")]))  # crosses songs
    data, held = seed_data(spec, vocab, train), heldout(spec["corpus"], spec["stride"])
    torch.manual_seed(0)
    model = SeedModel(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    curve: list[list[float]] = []
    ids = torch.from_numpy(train)
    trained, steps, next_eval = 0.0, 0, spec["eval_s"]
    for rows in shuffled(len(train), spec["batch"]):
        started = time.perf_counter()
        xy = data["xy"][rows] if data["materialised"] else one_hot(ids[rows], vocab)
        loss = F.cross_entropy(model(xy[:, :CONTEXT]), xy[:, CONTEXT])  # one-hot targets
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        trained, steps = trained + time.perf_counter() - started, steps + 1
        if trained >= next_eval or trained >= spec["budget_s"]:
            curve.append(curve_point("seed objective", model, model.on_ids, held, trained, steps))
            next_eval = trained + spec["eval_s"]
        if trained >= spec["budget_s"]:
            break
    kept = {k: data[k] for k in ("windows", "onehot_gb", "materialised", "build_s")}
    return {"curve": curve, "epochs": steps * spec["batch"] / len(train), **kept}


def train_config(preset: str, seconds: float) -> Any:
    from lstm_music.settings import build_config
    from lstm_music.training.settings import TrainConfig, preset_layer

    budget = {"max_minutes": seconds / 60, "epochs": 10**6, "patience": 0, "device": "cpu"}
    return build_config(TrainConfig, preset_layer(preset), budget)


def role_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """`train` with the seed preset in legs; the windowed metric on last.safetensors after each."""
    from lstm_music.model.checkpoint import load_checkpoint
    from lstm_music.training.run import train

    held, run, curve = heldout(spec["corpus"], spec["stride"]), Path(spec["run"]), []
    seconds, steps, epochs = 0.0, 0, 0.0
    for leg in spec["legs"]:
        if curve and seconds >= leg:
            continue  # the previous leg overshot this point
        config = train_config("seed", leg)
        result = train(spec["corpus"], run, config, resume=bool(curve), progress=False)
        last = load_checkpoint(run / "last.safetensors")  # metrics: the clock --resume carries
        seconds, steps, epochs = last.metrics["seconds"], result.steps, result.epochs
        curve.append(curve_point("ours", last.model, last_step(last.model), held, seconds, steps))
    full = score_full(spec["corpus"], run)
    return {"curve": curve, "epochs": epochs, "full": full}


def score_full(corpus_dir: str, run: Path) -> list[float]:
    """The product's own metric on best.safetensors: whole validation pieces, state carried."""
    from lstm_music.corpus.store import Corpus
    from lstm_music.evaluation.likelihood import score_pieces
    from lstm_music.model.checkpoint import load_checkpoint

    model = load_checkpoint(run / "best.safetensors").model
    totals = score_pieces(model, [p.ids for p in Corpus.load(corpus_dir).split("valid")])
    return [totals.nll_per_token, totals.accuracy]


def role_remi(spec: dict[str, Any]) -> dict[str, Any]:
    from lstm_music.training.run import train

    config = train_config(spec["preset"], spec["budget_s"])
    result = train(spec["corpus"], spec["run"], config, progress=False)
    return {"full": score_full(spec["corpus"], Path(spec["run"])), "steps": result.steps}


ROLES = {"seed": role_seed, "ours": role_ours, "remi": role_remi}


def child(args: argparse.Namespace, role: str, name: str, **spec: Any) -> dict[str, Any]:
    """Run one role in a fresh interpreter (run folder work/name); its JSON result."""
    spec = {**spec, "run": str(args.work / name), "result": str(args.work / f"{name}.json")}
    command = [sys.executable, __file__, "--role", role, "--spec", json.dumps(spec)]
    command += ["--threads", str(args.threads)] if args.threads else []
    subprocess.run(command, check=True)
    return json.loads(Path(spec["result"]).read_text())


def prepare_corpora(args: argparse.Namespace, work: Path) -> dict[str, str]:
    from lstm_music.corpus.prepare import PrepareConfig, prepare

    files = sorted(args.data.glob("*.mid"))[: 10 if args.quick else None]
    if not files:
        sys.exit(f"no .mid files in {args.data}")
    corpora = {}
    for tokenizer in ("seed", "remi"):
        out = work / f"corpus-{tokenizer}"
        names = [str(f) for f in files]
        tracks = "seed" if tokenizer == "seed" else "merge"  # the blog reads the first part only
        config = PrepareConfig(
            names, str(out), tokenizer=tokenizer, tracks=tracks, valid_fraction=0.1, seed=0
        )
        corpus = prepare(config, progress=False).corpus
        train, valid = (sum(len(p.ids) for p in corpus.split(s)) for s in ("train", "valid"))
        size = f"vocabulary {len(corpus.vocabulary)}, tokens train {train:,} / valid {valid:,}"
        print(f"{tokenizer:5} corpus: {len(files)} files, {size}")
        corpora[tokenizer] = str(out)
    return corpora


def legs(budget: float, first: float) -> list[float]:
    """Training-time points for ours: first, doubling, ending on the budget."""
    return [first * 2**k for k in range(64) if first * 2**k < budget] + [budget]


def best(curve: list[list[float]]) -> list[float]:
    """The curve point (seconds, loss, accuracy, steps) with the lowest held-out loss."""
    return min(curve, key=lambda point: point[1])


def line(label: str, seed: str, ours: str, ratio: str = "", goal: str = "") -> None:
    print(f"{label:34} {seed:>16} {ours:>16} {ratio:>9}  {goal}")


def report_seed_vs_ours(args: argparse.Namespace, seed: dict, ours: dict) -> None:
    (t_seed, l_seed, a_seed, _), mine = best(seed["curve"]), best(ours["curve"])
    reach = next((p[0] for p in ours["curve"] if p[1] <= l_seed), None)
    how = "materialised up front" if seed["materialised"] else "over --max-onehot-gb: per batch"
    blog = "as the blog" if args.seed_batch == 2048 else "the blog used 2048"
    print(f"\n== 2. seed objective vs ours, seed tokens, {args.seed_minutes:.3g} min training each")
    print(
        f"seed one-hot: {seed['windows']:,} windows x ({CONTEXT} + 1) x V float32 = "
        f"{seed['onehot_gb']:.2f} GB, {how} ({seed['build_s']:.1f} s, not in training time); "
        f"batch {args.seed_batch} ({blog}), {seed['curve'][-1][3]:.0f} steps, "
        f"{seed['epochs']:.2f} epochs. ours: {ours['curve'][-1][3]:.0f} steps, "
        f"{ours['epochs']:.0f} epochs completed. Training times exclude evaluation (ours "
        "includes the product's own validation at each epoch end and leg end)."
    )
    line("", "seed objective", "ours", "ratio", "goal")
    line("best held-out loss, nats", f"L_seed {l_seed:.3f}", f"{mine[1]:.3f}")
    line("accuracy at best", f"{a_seed:.3f}", f"{mine[2]:.3f}")
    ratio = t_seed / reach if reach else 0.0  # ours is timed at curve points: a lower bound
    goal = f">= 100x less: {VERDICT[ratio >= 100]}" + (" (lower bound)" if reach else "")
    reached = (f"{reach:.1f}", f"{ratio:.0f}x") if reach else ("not reached", "-")
    line("time to reach L_seed, s", f"{t_seed:.1f}", *reached, goal)
    rss = seed["rss_mb"], ours["rss_mb"]
    line("peak RSS, MB", f"{rss[0]:,.0f}", f"{rss[1]:,.0f}", f"{rss[0] / rss[1]:.1f}x",
         f"ours < 1 GB: {VERDICT[rss[1] < 1024]}")  # fmt: skip
    for name, result in (("seed", seed), ("ours", ours)):
        points = " ".join(f"{p[0]:.0f}s:{p[1]:.3f}" for p in result["curve"])
        print(f"curve {name} (training s: held-out nats): {points}")


def report_equal_time(args: argparse.Namespace, seed: dict, ours: dict, remi: dict) -> None:
    minutes = f"seed tokens {args.seed_minutes:.3g} min, REMI {args.remi_minutes:.3g} min"
    print(f"\n== 3. equal wall time ({minutes}); windowed = section 2's metric")
    print(f"{'run':32} {'metric':24} {'loss':>7} {'acc':>6} {'RSS MB':>7}")
    default, preset = remi["default"], remi["seed"]
    rows = [
        ("seed objective, seed tokens", "windowed, best point", *best(seed["curve"])[1:3], seed),
        ("ours seed preset, seed tokens", "windowed, best point", *best(ours["curve"])[1:3], ours),
        ("ours seed preset, seed tokens", "score_pieces, best.st", *ours["full"], ours),
        ("default preset, REMI", "score_pieces, best.st", *default["full"], default),
        ("seed preset, REMI", "score_pieces, best.st", *preset["full"], preset),
    ]
    for label, metric, loss, accuracy, result in rows:
        print(f"{label:32} {metric:24} {loss:7.3f} {accuracy:6.3f} {result['rss_mb']:7,.0f}")
    for text, ratio in (
        ("held-out loss ours / seed objective", rows[1][2] / rows[0][2]),
        ("REMI held-out loss default / seed preset", rows[3][2] / rows[4][2]),
    ):
        print(f"{text}: {ratio:.3f}  (goal < 1: {VERDICT[ratio < 1]})")


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_machine() -> None:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")
    versions = f"torch {torch.__version__} ({torch.get_num_threads()} threads), python "
    print(
        f"machine: nproc {os.cpu_count()}, {cpu}, {versions}{platform.python_version()}, {load()}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="seed MIDI folder")
    parser.add_argument("--work", type=Path, help="keep corpora and runs here (default: temp)")
    parser.add_argument("--seed-minutes", type=float, help="budget of section 2 (10)")
    parser.add_argument("--remi-minutes", type=float, help="budget per REMI run (5)")
    parser.add_argument("--seed-batch", type=int, help="seed objective batch (256; blog: 2048)")
    parser.add_argument("--max-onehot-gb", type=float, default=12.0)
    parser.add_argument("--eval-seconds", type=float, help="seed objective evaluation period (60)")
    parser.add_argument("--first-leg", type=float, help="ours: first curve point, s (2)")
    parser.add_argument("--eval-stride", type=int, help="score every Nth held-out window (1)")
    parser.add_argument("--threads", type=int, help="torch threads per process (0 = default)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 files, 10 s, 1 thread")
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = "seed_minutes remi_minutes eval_seconds first_leg seed_batch eval_stride threads"
    full, quick = (10, 5, 60, 2, 256, 1, 0), (1 / 6, 1 / 6, 5, 5, 32, 2, 1)
    for name, value in zip(names.split(), quick if args.quick else full):
        if getattr(args, name) is None:  # flags given win over --quick
            setattr(args, name, value)
    return args


def run_all(args: argparse.Namespace) -> None:
    for run in ("ours", "remi-default", "remi-seed"):  # a reused --work starts fresh runs
        shutil.rmtree(args.work / run, ignore_errors=True)
    corpora = prepare_corpora(args, args.work)
    budget = args.seed_minutes * 60
    common = {"corpus": corpora["seed"], "budget_s": budget, "stride": args.eval_stride}
    seed = child(args, "seed", "seed", batch=args.seed_batch, eval_s=args.eval_seconds,
                 max_onehot_gb=args.max_onehot_gb, **common)  # fmt: skip
    ours = child(args, "ours", "ours", legs=legs(budget, args.first_leg), **common)
    remi_spec = {"corpus": corpora["remi"], "budget_s": args.remi_minutes * 60}
    remi = {p: child(args, "remi", f"remi-{p}", preset=p, **remi_spec) for p in ("default", "seed")}
    report_seed_vs_ours(args, seed, ours)
    report_equal_time(args, seed, ours, remi)


def main() -> None:
    torch.set_flush_denormal(True)  # denormals slow this CPU 10-20x: flush them, every process
    args = parse_args()
    if args.threads:  # more threads than free cores makes torch's spinning threads crawl
        torch.set_num_threads(args.threads)
    if args.role:
        spec = json.loads(args.spec)
        result = ROLES[args.role](spec)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
        Path(spec["result"]).write_text(json.dumps(result))
        return
    print_machine()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        args.work = args.work or Path(scratch)
        args.work.mkdir(parents=True, exist_ok=True)
        run_all(args)
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
