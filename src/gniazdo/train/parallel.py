"""Processes and devices: one process (CPU or one GPU), or ``torchrun`` with DDP or FSDP2.

``torchrun`` sets RANK / WORLD_SIZE / LOCAL_RANK; we then start NCCL on GPUs and gloo on CPUs. DDP keeps a full
replica per rank and all-reduces gradients; FSDP2 (``fully_shard`` on each block, then on the root) shards
parameters, gradients and optimizer state. Both average gradients over ranks, which the trainer accounts for
when it normalises the loss (see ``Trainer.train_step``). Every collective here is called by every rank.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

from gniazdo.errors import UserError


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    mode: str  # none | ddp | fsdp

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def initialized(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("device: cuda was requested but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str = "auto", mode: str = "auto") -> Dist:
    """Start the process group when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world == 1:
        if mode in ("ddp", "fsdp"):
            mode = "none"  # one process: nothing to distribute (the same config runs on a laptop)
        return Dist(0, 1, 0, dev, "none")
    if mode == "none":
        raise UserError(f"parallel.mode is 'none' but torchrun started {world} processes")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, dev, "ddp" if mode == "auto" else mode)


def wrap_model(model: nn.Module, d: Dist, reshard_after_forward: bool = True) -> nn.Module:
    if d.mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    if d.mode == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(d.device.type, (d.world,))
        for block in model.layers:
            fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward)
        fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The Transformer inside DDP / torch.compile wrappers (FSDP2 wraps in place)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


@contextlib.contextmanager
def gradient_sync(model: nn.Module, d: Dist, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of a step (one reduction per step)."""
    if d.mode == "ddp" and not sync:
        with model.no_sync():
            yield
        return
    if d.mode == "fsdp":
        model.set_requires_gradient_sync(sync)
    yield


def all_reduce(values: list[float], d: Dist, op: str = "sum") -> list[float]:
    """Sum (or max/min) a few numbers over ranks, in float64 so token counts stay exact."""
    if d.world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[op])
    return t.tolist()


def broadcast_object(obj: Any, d: Dist) -> Any:
    """Rank 0's object on every rank."""
    if d.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
