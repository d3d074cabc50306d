"""The learning-rate schedule: linear warm-up to the peak, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch


def lr_lambda(warmup: int, total: int, final_ratio: float):
    """The LR factor (of the peak) at each optimizer step: (step + 1) / warmup during the first
    `warmup` steps, then a cosine from 1 down to `final_ratio` at step `total`, and `final_ratio`
    after it."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def lr_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int, final_ratio: float):
    """A LambdaLR over `optimizer` (whose lr is the peak) with `lr_lambda`'s schedule; stepped once
    per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total, final_ratio))
