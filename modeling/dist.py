"""Processes of a (possibly distributed) training run: rank, world, the process group and the few collective
operations the trainer needs (``torchrun`` sets the environment; a single process needs none of it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def process_group_backend(cuda: bool) -> str:
    """gloo for CPU tensors beside nccl for CUDA ones: object gathers and host-side counters go through
    gloo, so no reduction depends on where a tensor happens to live."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_dist() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(process_group_backend(torch.cuda.is_available()))
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local)
    return d


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def sum_over_ranks(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """Element-wise sum over ranks (a tensor on the run's device: nccl reduces CUDA tensors only)."""
    if d.world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
