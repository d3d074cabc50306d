"""Samplers: SortaGrad's first epoch in order of increasing duration, then bucketed shuffling."""

from __future__ import annotations

from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler


def make_train_sampler(cuts: CutSet, max_duration: float, epoch: int, sortagrad: bool = True,
                       num_buckets: int = 10, seed: int = 0, world_size: int = 1, rank: int = 0):
    """The sampler of one training epoch.

    SortaGrad (DS2 section 3.1): epoch 0 walks the cuts from shortest to longest, which
    steadies early CTC training; later epochs draw duration buckets in random order.
    Batches hold up to `max_duration` seconds of audio on each of `world_size` ranks.
    """
    if sortagrad and epoch == 0:
        sampler = SimpleCutSampler(cuts.sort_by_duration(ascending=True), max_duration=max_duration,
                                   shuffle=False, world_size=world_size, rank=rank, seed=seed)
    else:
        sampler = DynamicBucketingSampler(cuts, max_duration=max_duration, shuffle=True,
                                          num_buckets=num_buckets, seed=seed,
                                          world_size=world_size, rank=rank)
    sampler.set_epoch(epoch)
    return sampler


def make_eval_sampler(cuts: CutSet, max_duration: float, world_size: int = 1, rank: int = 0):
    """Deterministic batches for validation and decoding."""
    return SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False,
                            world_size=world_size, rank=rank)
