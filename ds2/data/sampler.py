"""Samplers: SortaGrad's first epoch in order of increasing duration, then bucketed shuffling."""

from __future__ import annotations

import itertools

from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler

from ds2.data import EVAL_MAX_DURATION
from ds2.data.train_cuts import TrainCuts

# DynamicBucketingSampler estimates its bucket edges from this many cuts (its default)
BINS_ESTIMATE_CUTS = 10_000


def bucket_count(num_cuts: int, num_buckets: int) -> int:
    """The buckets the shuffling sampler can use for `num_cuts` cuts: Lhotse's
    estimate_duration_buckets asserts 1 < num_buckets <= the cuts it estimates from; 1 means
    no bucketing (a plain shuffle)."""
    return max(1, min(num_buckets, num_cuts, BINS_ESTIMATE_CUTS))


def make_train_sampler(cuts: TrainCuts, max_duration: float, epoch: int, sortagrad: bool = True,
                       num_buckets: int = 10, seed: int = 0, world_size: int = 1, rank: int = 0,
                       max_cuts: int = 0):
    """The sampler of one training epoch; the same arguments give the same batches.

    SortaGrad (DS2 section 3.1): epoch 0 walks the cuts from shortest to longest, which
    steadies early CTC training; later epochs walk a seeded permutation of all the cuts
    (`TrainCuts.shuffled`), grouped into batches of similar duration by Lhotse's bucketing.
    The cuts are parsed as the sampler walks them (ds2.data.train_cuts), never all at once.
    Batches hold up to `max_duration` seconds of audio (and `max_cuts` cuts, if set) on each
    of `world_size` ranks: every step takes `world_size` consecutive batches, one per rank.
    With fewer cuts than `num_buckets`, there are as many buckets as cuts (see `bucket_count`).
    """
    limits = {"max_duration": max_duration, "max_cuts": max_cuts or None}
    if sortagrad and epoch == 0:
        sampler = SimpleCutSampler(cuts.sorted_by_duration(), shuffle=False, world_size=world_size,
                                   rank=rank, seed=seed, **limits)
    elif bucket_count(len(cuts), num_buckets) < 2:
        sampler = SimpleCutSampler(cuts.shuffled(seed + epoch), shuffle=False, world_size=world_size, rank=rank,
                                   seed=seed, **limits)
    else:
        # Lhotse's bucketing shuffles within a buffer too; the permutation makes the walk global
        sampler = DynamicBucketingSampler(cuts.shuffled(seed + epoch), shuffle=True,
                                          num_buckets=bucket_count(len(cuts), num_buckets), seed=seed,
                                          world_size=world_size, rank=rank,
                                          num_cuts_for_bins_estimate=BINS_ESTIMATE_CUTS, **limits)
    sampler.set_epoch(epoch)
    return sampler


class SkipFirst:
    """The batches of `sampler` after its first `n` (and before batch `stop`, if given): where
    a run resumed mid-epoch goes on.

    Lhotse's own `state_dict` counts the batches the sampler has handed out, which a
    DataLoader prefetches ahead of training; the count of trained batches is exact.
    """

    def __init__(self, sampler, n: int, stop: int | None = None):
        self.sampler, self.n, self.stop = sampler, n, stop

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, self.stop)


class EveryNth:
    """Batches `first`, `first + n`, `first + 2n`, ... of `sampler`: one rank's share of batches
    that stay as one process would make them."""

    def __init__(self, sampler, n: int, first: int):
        self.sampler, self.n, self.first = sampler, n, first

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.first, None, self.n)


def make_eval_sampler(cuts: CutSet, max_duration: float = EVAL_MAX_DURATION, world_size: int = 1, rank: int = 0):
    """Deterministic batches for validation and decoding: the cuts in their order, up to
    `max_duration` seconds a batch. With several ranks, each takes every `world_size`-th batch
    of that one sequence (no cut is repeated or left out, unlike Lhotse's own rank split),
    so the batches, and the outputs, are those of one process."""
    sampler = SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False, world_size=1, rank=0)
    return sampler if world_size == 1 else EveryNth(sampler, world_size, rank)
