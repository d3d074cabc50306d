"""What training reads: the paths (`TrainData`), the training and dev cuts, the feature statistics.

The training cuts are read once the model says how many output frames each cut gets
(`usable_cuts`, with the checks of ds2.data.filter): lazily from a manifest, into a
`ds2.data.train_cuts.TrainCuts` that keeps only offsets and durations in memory, or from
Lhotse Shar shards (`ds2 shar`), of which each rank reads its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from lhotse import CutSet

from ds2.config import TrainConfig
from ds2.data.features import feature_settings_of_cut
from ds2.data.filter import NoCutsLeft, TrainableCuts, filter_trainable
from ds2.data.pitch import NUM_PITCH_FEATURES
from ds2.data.sampler import bucket_count
from ds2.data.shar import is_shar_dir, load_rank_shards
from ds2.data.train_cuts import TrainCuts
from ds2.text import Tokenizer
from ds2.train.distributed import Ranks
from ds2.train.errors import TrainingStopped

log = logging.getLogger("ds2.train")


@dataclass
class TrainData:
    """Paths of what training reads."""

    train_cuts: Path  # cuts with features, or a folder of Shar shards
    dev_cuts: Path
    stats: Path  # global feature mean/std written by the features stage


def read_train_cuts(path: Path, rank: int, world_size: int) -> tuple[CutSet, bool]:
    """The training cuts of this rank, lazily (all of them, or its shards: shard k -> rank k
    mod world size), and whether they are this rank's own share; stops when there is no cut."""
    rank_split = is_shar_dir(path)
    cuts = load_rank_shards(path, rank, world_size) if rank_split else CutSet.from_jsonl_lazy(path)
    if next(iter(cuts), None) is None:
        raise TrainingStopped(f"train: no cut in {path}; nothing to train on")
    return cuts, rank_split


def read_stats(path: Path, first_cut) -> dict:
    """The feature mean and std written by `ds2 features`, and the feature settings (`ds2
    transcribe` computes a model's features from them): the file's, or for a file written before
    it held them, what `first_cut` of training tells (None when it is not ours). TrainingStopped
    if it is not such a file."""
    try:
        stats = torch.load(path, map_location="cpu", weights_only=True)
        features = stats.get("features") or feature_settings_of_cut(first_cut)
        return {"mean": stats["mean"], "std": stats["std"], "features": features}
    except Exception as e:
        raise TrainingStopped(f"--stats {path} is not a feature mean/std file of `ds2 features` "
                              f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from None


def check_pitch_features(model_pitch: int, features: dict | None, path: Path) -> None:
    """Stops unless `model.pitch_features` (0: none set aside) matches the pitch features the
    training features of `path` have (`features`: the settings `read_stats` gives)."""
    pitch = NUM_PITCH_FEATURES if (features or {}).get("pitch") else 0
    if model_pitch not in (0, pitch):
        raise TrainingStopped(f"model.pitch_features is {model_pitch}, but the features of {path} have {pitch} "
                              f"pitch features (ds2 features --pitch: {NUM_PITCH_FEATURES})")


def usable_cuts(train_cuts: CutSet, rank_split: bool, dev_path: Path, tokenizer: Tokenizer, model, ranks: Ranks,
                tc: TrainConfig) -> tuple[TrainCuts, CutSet]:
    """The training and dev cuts training can use (the `TrainableCuts` check with `model`'s
    output frames): train as `TrainCuts` read in one pass (on disk; the cuts of shards in
    memory), dev in memory. Stops when none is left of dev, of train, or (with shards) of any
    rank's train: the ranks agree first, so none stops alone."""
    try:
        # every rank reads all of train (or its shards) and dev, so an empty result is every rank's
        check = TrainableCuts(tokenizer, model, "train")
        train = TrainCuts.from_cuts(train_cuts, check.keep, on_disk=not rank_split)
        check.report(require_some=not rank_split)
        dev = filter_trainable(CutSet.from_file(dev_path), tokenizer, model, "dev", require_some=True).to_eager()
    except NoCutsLeft as e:
        raise TrainingStopped(str(e)) from None
    if rank_split and ranks.min_over_ranks(len(train)) == 0:
        raise TrainingStopped(f"train: no cut is left to train on for at least one rank (this rank, {ranks.rank}, "
                              f"has {len(train)}): see the dropped cuts in the log, or use fewer shards")
    buckets = bucket_count(len(train), tc.num_buckets)
    if buckets < tc.num_buckets and (tc.epochs > 1 or not tc.sortagrad):  # bucketing is used
        log.warning("train.num_buckets %d is more than the %d training cuts allow (Lhotse's bucketing needs "
                    "at least 2 buckets and no more buckets than cuts): using %s", tc.num_buckets,
                    len(train), f"{buckets} buckets" if buckets > 1 else "one shuffled bucket")
    return train, dev
