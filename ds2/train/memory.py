"""The largest-batch check: before the first epoch, one forward and backward pass on the batch
of the longest cuts, so that a batch that does not fit in memory shows at minute one, not hour ten."""

from __future__ import annotations

import copy
import logging

import torch
from lhotse import CutSet

from ds2.checkpoint import rng_state, set_rng_state
from ds2.data.train_cuts import TrainCuts
from ds2.train.errors import TrainingStopped
from ds2.train.loss import compute_loss

log = logging.getLogger("ds2.train")


def longest_batch(cuts: TrainCuts, max_duration: float, max_cuts: int = 0) -> list:
    """The longest cuts, longest first, as many as one batch of `max_duration` seconds (and at
    most `max_cuts` cuts, if set) holds."""
    batch, total = [], 0.0
    for cut in cuts.longest():
        if batch and (total + cut.duration > max_duration or (max_cuts and len(batch) >= max_cuts)):
            break
        batch.append(cut)
        total += cut.duration
    return batch


def check_largest_batch(model, optimizer, dataset, cuts: TrainCuts, max_duration: float, max_cuts: int,
                        device: torch.device, dtype: str) -> None:
    """Run forward and backward once on the batch of the longest cuts, then restore the model,
    the gradients and the RNG states; TrainingStopped if it does not fit in memory."""
    longest = longest_batch(cuts, max_duration, max_cuts)
    total = sum(c.duration for c in longest)
    batch = dataset[CutSet.from_cuts(longest)]
    if not batch["cut_ids"]:
        return
    saved, rng = copy.deepcopy(model.state_dict()), rng_state()
    try:
        loss, tokens, _, _ = compute_loss(model, batch, device, dtype)
        (loss / max(1, tokens)).backward()
    except torch.OutOfMemoryError as e:
        raise TrainingStopped(f"the largest batch ({len(longest)} cuts, {total:.0f} s of audio) does not fit in "
                              "memory: lower train.max_duration (or train.max_cuts)") from e
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        set_rng_state(rng)
    log.info("the largest batch (%d cuts, %.0f s of audio) fits in memory", len(longest), total)
