"""Multi-process training with PyTorch's own engine, switched on by `torchrun`'s environment.

`torchrun --nproc-per-node N -m lstm_music train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; we
then join a process group (NCCL on GPUs, gloo on CPUs) and wrap the model in
DistributedDataParallel. Without those variables everything runs as one ordinary process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lstm_music.errors import SettingError


@dataclass
class Runtime:
    """Where this process runs and who it is among its peers."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA, then Apple MPS, then CPU for "auto"; or exactly what the user named."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        hint = "use auto, cpu, cuda, cuda:1 or mps"
        raise SettingError(f"unknown device {name!r}: {hint}", "device") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingError("device cuda asked for, but PyTorch sees no CUDA GPU here", "device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SettingError("device mps asked for, but Apple MPS is not available here", "device")
    return device


def start(device_name: str = "auto") -> Runtime:
    """Join the process group if launched by torchrun; share the CPU cores among local ranks."""
    # denormal floats (tiny gradients late in training) slow x86 arithmetic 10-20x: flush them
    torch.set_flush_denormal(True)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Runtime(pick_device(device_name))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if device.type == "cpu":  # N processes on one machine must not each use every core
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Runtime(device, rank, world_size, local_rank)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], runtime: Runtime) -> list[float]:
    """Sum of `values` over all processes (the values themselves when not distributed)."""
    if not runtime.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=runtime.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_to_main(value: Any, runtime: Runtime) -> list[Any] | None:
    """Every process's `value`, in rank order, on rank 0 (None elsewhere).

    Uses torch's object gather (pickle over the process group, between our own processes;
    nothing read from a file is ever unpickled).
    """
    if not runtime.distributed:
        return [value]
    gathered: list[Any] | None = [None] * runtime.world_size if runtime.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def any_process(flag: bool, runtime: Runtime) -> bool:
    """True on every process if it is true on any: decisions like "stop now" stay in step."""
    return bool(all_reduce_sum([float(flag)], runtime)[0]) if runtime.distributed else flag
