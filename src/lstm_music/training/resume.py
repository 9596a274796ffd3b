"""Training state for a resumed run: weights, optimizer, schedule, RNG, hidden state, position.

Everything a resumed run needs is in ONE file, `train_state.safetensors`, written atomically
(temporary file, then rename): a kill at any moment leaves either the previous complete state or
the new one, never weights from one step and optimizer moments from another. The weights are
stored here too (not taken from last.safetensors, which is renamed separately). In a
distributed run the optimizer is the same on every process (DDP averages the gradients), so rank
0 writes it once, beside each process's own RNG and hidden state, gathered from the others.

The previous release's state (format 1: one file per process, `train_state.rankN.safetensors`
beside rank 0's, no weights) is still resumed, with the weights from last.safetensors, when that
checkpoint is at the state's step.

Saved as safetensors (tensors) plus JSON (everything else), never pickle.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import torch

from lstm_music import __version__
from lstm_music.errors import LstmMusicError
from lstm_music.fsutil import write_bytes_atomically
from lstm_music.model.checkpoint import load_checkpoint, write_safetensors
from lstm_music.model.header import (
    CheckpointError,
    read_checkpoint_header,
    read_safetensors,
    read_safetensors_header,
)
from lstm_music.model.lstm import HiddenState, load_stored, stored_tensors
from lstm_music.model.runs import CONFIG_FILE, LAST_CHECKPOINT, STATE_FILE

NO_VALIDATION = "the corpus has no validation pieces: best.safetensors is the last checkpoint"
FORMAT = "lstm-music-train-state"
VERSION = 2  # 1: one file per process, weights only in last.safetensors


def state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def _v1_path(run_dir: Path, rank: int) -> Path:
    return state_path(run_dir) if rank == 0 else run_dir / f"train_state.rank{rank}.safetensors"


def check_state(run_dir: Path, world_size: int) -> None:
    """Read the state's headers only: a `CheckpointError` for a damaged state (start it over),
    an `LstmMusicError` for one this run must not touch (another world size, a newer format)."""
    meta = read_safetensors_header(state_path(run_dir), "training state").meta or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{state_path(run_dir)} is not an lstm-music training state")
    version = meta.get("version", 1)
    if version == 1:
        saved = 1
        while _v1_path(run_dir, saved).exists():
            saved += 1
    elif version == VERSION:
        saved = meta.get("world_size")
    elif isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise LstmMusicError(
            f"{state_path(run_dir)} was written by a newer lstm-music (training state format "
            f"{version}): upgrade lstm-music to resume {run_dir}"
        )
    else:
        raise CheckpointError(f"{state_path(run_dir)} has an unknown format version")
    if saved != world_size:
        raise LstmMusicError(
            f"{run_dir} is a run of {saved} processes, this one has {world_size}: "
            f"resume it with torchrun --nproc-per-node {saved}"
        )
    if version == 1:
        _check_v1_steps(run_dir, world_size)


def _check_v1_steps(run_dir: Path, world_size: int) -> None:
    """Format 1 renamed last.safetensors and each state file separately: resume only a pair
    saved at the same step (a kill in between left them apart)."""
    last = run_dir / LAST_CHECKPOINT
    if not last.exists():
        raise CheckpointError(f"{run_dir} has a training state but no last.safetensors")
    weights_step = (read_checkpoint_header(last).meta or {}).get("metrics", {}).get("step")
    for rank in range(world_size):
        meta = read_safetensors_header(_v1_path(run_dir, rank), "training state").meta or {}
        step = (meta.get("progress") or {}).get("step")
        if step != weights_step:
            raise CheckpointError(
                f"last.safetensors is at step {weights_step} but the training state an older "
                f"lstm-music wrote ({_v1_path(run_dir, rank).name}) at step {step}"
            )


def rank_state(hidden: HiddenState | None) -> dict[str, torch.Tensor]:
    """This process's own part of the state: its RNG streams and its lanes' hidden state."""
    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    for layer, (h, c) in enumerate(hidden or []):
        tensors[f"hidden.{layer}.h"], tensors[f"hidden.{layer}.c"] = h.cpu(), c.cpu()
    return tensors


def save_train_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ranks: list[dict[str, torch.Tensor]],
    progress: dict[str, Any],
    average: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write weights, optimizer moments and every process's `rank_state` as one file, and
    the averaged weights when the run keeps them."""
    tensors = {f"model.{name}": value for name, value in stored_tensors(model).items()}
    tensors.update({f"average.{name}": value for name, value in (average or {}).items()})
    plain_state: dict[str, dict[str, Any]] = {}
    optimizer_state = optimizer.state_dict()
    for param_id, values in optimizer_state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{param_id}.{key}"] = value
            else:
                plain_state.setdefault(str(param_id), {})[key] = value
    for rank, part in enumerate(ranks):
        tensors.update({f"rank{rank}.{name}": value for name, value in part.items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "world_size": len(ranks),
        "progress": progress,
        "param_groups": optimizer_state["param_groups"],
        "plain_state": plain_state,
    }
    write_safetensors(path, tensors, meta)
    for old in path.parent.glob("train_state.rank*.safetensors"):  # format 1's, now superseded
        old.unlink(missing_ok=True)


def load_train_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    world_size: int,
    device: torch.device,
    average: dict[str, torch.Tensor] | None = None,
) -> tuple[HiddenState | None, dict[str, Any]]:
    """Restore weights, optimizer, RNG (and the averaged weights into `average`, when the run
    keeps them) in place; return the hidden state and the progress.

    Raises `CheckpointError` for a file that is missing, damaged, or from a run with another
    number of processes (`check_state` says which first); the model may then be half restored:
    rebuild it. A format 1 state is read with the weights of last.safetensors.
    """
    tensors, meta = read_safetensors(path, "training state")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lstm-music training state")
    if "version" not in meta:
        return _load_v1(path.parent, model, optimizer, rank, device)
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has training state format {meta.get('version')}")
    if meta.get("world_size") != world_size:
        raise CheckpointError(
            f"{path} is from a run of {meta.get('world_size')} processes, this one has "
            f"{world_size}; resume it with torchrun --nproc-per-node {meta.get('world_size')}"
        )
    try:
        weights = {n[len("model.") :]: t for n, t in tensors.items() if n.startswith("model.")}
        load_stored(model, weights)
        _restore_average(tensors, average)
        optimizer.load_state_dict(_optimizer_state(tensors, meta, device))
        progress = _progress(meta)
        hidden = _restore_rank(tensors, f"rank{rank}.", device)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise CheckpointError(f"{path}: the training state is incomplete: {error}") from error
    return hidden, progress


def _load_v1(run_dir: Path, model, optimizer, rank: int, device) -> tuple[HiddenState | None, dict]:
    """Format 1: this process's own file, the weights from last.safetensors (same step)."""
    path = _v1_path(run_dir, rank)
    tensors, meta = read_safetensors(path, "training state")
    last = load_checkpoint(run_dir / LAST_CHECKPOINT, device)
    try:
        progress = _progress(meta)
        if last.metrics.get("step") != progress["step"]:
            raise ValueError(f"last.safetensors is not at step {progress['step']}")
        model.load_state_dict(last.model.state_dict())
        optimizer.load_state_dict(_optimizer_state(tensors, meta, device))
        hidden = _restore_rank(tensors, "", device)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise CheckpointError(f"{path}: the training state is incomplete: {error}") from error
    return hidden, progress


def _restore_average(tensors, average: dict[str, torch.Tensor] | None) -> None:
    """Copy the saved average into `average` in place (a KeyError when it was not saved)."""
    saved = {n[len("average.") :]: t for n, t in tensors.items() if n.startswith("average.")}
    if average is None:
        return
    if set(saved) != set(average):
        raise KeyError("the averaged weights were not saved")
    for name, value in saved.items():
        average[name].copy_(value)


def _progress(meta: dict[str, Any]) -> dict[str, Any]:
    progress = dict(meta["progress"])
    int(progress["step"]), int(progress["epoch"]), int(progress["batch"])
    return progress


def _optimizer_state(tensors, meta, device) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = tensor.to(device)
    for param_id, values in meta["plain_state"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _restore_rank(tensors, prefix: str, device: torch.device) -> HiddenState | None:
    """Set this process's RNG streams (its tensors' names begin with `prefix`); return its
    hidden state."""
    torch.set_rng_state(tensors[f"{prefix}rng.cpu"])
    cuda_states = [
        tensors[f"{prefix}rng.cuda.{i}"]
        for i in range(torch.cuda.device_count())
        if f"{prefix}rng.cuda.{i}" in tensors
    ]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)
    hidden_names = [n for n in tensors if n.startswith(f"{prefix}hidden.")]
    layers = sorted({int(n[len(prefix) :].split(".")[1]) for n in hidden_names})
    hidden = [
        (tensors[f"{prefix}hidden.{i}.h"].to(device), tensors[f"{prefix}hidden.{i}.c"].to(device))
        for i in layers
    ]
    return hidden or None


def resumable(run_dir: Path, world_size: int, notes: list[str]) -> bool:
    """Whether `run_dir` holds a training state this run can resume; a run that stopped before
    its first save, or whose state is damaged, is started over (with a note); a folder that is
    no run at all, or a state of another world size or a newer format, is an error."""
    if state_path(run_dir).exists():
        try:
            check_state(run_dir, world_size)
        except CheckpointError as error:
            notes.append(f"cannot resume: {error}; starting the run over")
            return False
        return True
    if not (run_dir / CONFIG_FILE).exists():
        raise LstmMusicError(f"nothing to resume in {run_dir}: it is not a training run")
    notes.append(
        f"nothing to resume in {run_dir}: the run stopped before it first saved its training "
        "state (no train_state.safetensors); starting it over"
    )
    return False


def write_error(error: OSError, run_dir: Path) -> str:
    """One line for a failed write or read: a full disk, a read-only or vanished folder."""
    where = error.filename or run_dir
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the disk is full (writing {where}): free some space, then resume the run in {run_dir}"
        )
    return f"cannot write or read {where}: {error.strerror or error}"


def prepare_run_dir(
    run_dir: Path, corpus_path, settings: dict[str, Any], resume: bool, runtime, valid_pieces: int
) -> None:
    """Refuse to start over a run by accident; write config.json (rank 0), atomically."""
    if not resume and ((run_dir / LAST_CHECKPOINT).exists() or state_path(run_dir).exists()):
        raise LstmMusicError(
            f"{run_dir} already holds a run; use --resume {run_dir} to continue it, "
            "--overwrite to replace it, or choose a new --out"
        )
    if runtime.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {
            "train": settings,
            "corpus": str(Path(corpus_path).resolve()),
            "world_size": runtime.world_size,
            "lstm_music_version": __version__,
            "validation_pieces": valid_pieces,
            "best_checkpoint": "lowest validation loss" if valid_pieces else NO_VALIDATION,
        }
        text = json.dumps(resolved, indent=1) + "\n"
        write_bytes_atomically(run_dir / CONFIG_FILE, text.encode())
    if runtime.distributed:
        torch.distributed.barrier()


VALID_SCORING = 2  # in a run's progress: 2 = validation leaves control tokens out (issue 13)


def rescore_older_best(progress: dict[str, Any], vocabulary: list[str]) -> str:
    """A run saved by a version that scored control tokens in validation compares no more with
    today's validation loss: its best is forgotten (a note to say so), else nothing changes."""
    from lstm_music.tokens.controls import is_control

    older = progress.get("valid_scoring") != VALID_SCORING
    progress["valid_scoring"] = VALID_SCORING
    if not (older and any(is_control(token) for token in vocabulary)):
        return ""
    progress["best"], progress["bad_evals"] = None, 0
    return ("this run's best validation loss was measured by an older version, which scored "
            "the control tokens too: the best checkpoint is chosen afresh")  # fmt: skip
