"""Distributed training: the process group, the device of each process, and the reductions
over ranks the training loop needs so that every rank takes the same branch.

Under `torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK), `ds2 train` runs one process per
GPU (NCCL) or per CPU share (gloo); with one process and no torchrun, nothing here talks to
another process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ds2.precision import DTYPES


def pick_device() -> torch.device:
    """This process's GPU (LOCAL_RANK under torchrun), else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(world_size: int, device: torch.device) -> None:
    """Join the process group when there are several processes, or one under torchrun (so that
    NCCL/gloo are exercised by a one-process run too), and bind this process to its GPU."""
    if (world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ) and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def agree_on_dtype(dtype: str, reason: str, device: torch.device) -> tuple[str, str]:
    """The precision every rank uses: a timed CPU probe (dtype auto) could choose differently on
    different ranks, and then float32 wins. Returns (dtype, reason) as `resolve_dtype` does."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return dtype, reason
    names = list(DTYPES)
    agreed = torch.tensor([names.index(dtype)], device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)  # float32 (index 0) if any rank chose it
    if names[int(agreed)] != dtype:
        return names[int(agreed)], f"{reason}, but another rank chose {names[int(agreed)]}"
    return dtype, reason


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """`model` wrapped in DistributedDataParallel inside a process group, else `model` itself."""
    if dist.is_available() and dist.is_initialized():
        return torch.nn.parallel.DistributedDataParallel(model)
    return model


@dataclass
class Ranks:
    """This process's place among the training processes, and the reductions over all of them
    (plain numbers when there is one process)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    def reduce_over_ranks(self, values: list[float], op=dist.ReduceOp.SUM) -> list[float]:
        """`values` summed (or reduced by `op`) element-wise over the ranks, in one all-reduce."""
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def min_over_ranks(self, value: float) -> float:
        return self.reduce_over_ranks([value], op=dist.ReduceOp.MIN)[0]

    def all_ranks_agree(self, flag: bool) -> bool:
        """Whether `flag` holds on every rank (the ranks must take the same branch)."""
        return self.reduce_over_ranks([0 if flag else 1])[0] == 0

    def ratio(self, num: float, den: float) -> float:
        """sum(num) / sum(den) over the ranks (den at least 1)."""
        num, den = self.reduce_over_ranks([num, den])
        return num / max(1.0, den)
