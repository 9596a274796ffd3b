"""Training state for `--resume`: optimizer, schedule, RNG, carried hidden state, position.

Saved as safetensors (tensors) plus JSON (everything else), never pickle. Each process of a
distributed run saves its own file (its RNG and hidden state are its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lstm_music.checkpoint import CheckpointError, read_safetensors, write_safetensors
from lstm_music.model import State


def state_path(run_dir: Path, rank: int) -> Path:
    return run_dir / (
        "train_state.safetensors" if rank == 0 else f"train_state.rank{rank}.safetensors"
    )


def save_train_state(
    path: Path, optimizer: torch.optim.Optimizer, hidden: State | None, progress: dict[str, Any]
) -> None:
    """Write optimizer moments, RNG and hidden state as tensors; the rest as JSON."""
    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    plain_state: dict[str, dict[str, Any]] = {}
    optimizer_state = optimizer.state_dict()
    for param_id, values in optimizer_state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{param_id}.{key}"] = value
            else:
                plain_state.setdefault(str(param_id), {})[key] = value
    for layer, (h, c) in enumerate(hidden or []):
        tensors[f"hidden.{layer}.h"], tensors[f"hidden.{layer}.c"] = h, c
    meta = {
        "format": "lstm-music-train-state",
        "progress": progress,
        "param_groups": optimizer_state["param_groups"],
        "plain_state": plain_state,
    }
    write_safetensors(path, tensors, meta)


def load_train_state(
    path: Path, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[State | None, dict[str, Any]]:
    """Restore optimizer and RNG in place; return the hidden state and the progress record."""
    tensors, meta = read_safetensors(path, "training state")
    if meta.get("format") != "lstm-music-train-state":
        raise CheckpointError(f"{path} is not an lstm-music training state")
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = tensor.to(device)
    for param_id, values in meta["plain_state"].items():
        state.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [
        tensors[f"rng.cuda.{i}"]
        for i in range(torch.cuda.device_count())
        if f"rng.cuda.{i}" in tensors
    ]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)
    layers = sorted({int(n.split(".")[1]) for n in tensors if n.startswith("hidden.")})
    hidden = [
        (tensors[f"hidden.{i}.h"].to(device), tensors[f"hidden.{i}.c"].to(device)) for i in layers
    ]
    return hidden or None, meta["progress"]
