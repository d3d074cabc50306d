"""Lhotse Shar shards for training on many machines.

Shar keeps a cut set as numbered shards: `cuts.NNNNNN.jsonl.gz` with the metadata and
`features.NNNNNN.tar` with the arrays, read sequentially (a shared file system or object
store serves them well). `ds2 shar CUTS OUT_DIR` writes them; `ds2 train --train-cuts OUT_DIR`
then gives shard k to rank k mod WORLD_SIZE, so every process reads only its own shards.

    ds2 shar data/fbank/synth_cuts_train.jsonl.gz data/shar/train --shard-size 1000
"""

from __future__ import annotations

import logging
from pathlib import Path

from lhotse import CutSet

log = logging.getLogger(__name__)


def export_shar(cuts_path: str | Path, out_dir: str | Path, shard_size: int = 1000) -> list[Path]:
    """Write the cuts of `cuts_path` with their features (Lilcom) as Shar shards; returns the
    cut manifests of the shards. ValueError (one line) unless `cuts_path` is a cut set whose every
    cut has features that are there, before anything is written."""
    cuts = read_cuts_with_features(cuts_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = cuts.to_shar(out_dir, fields={"features": "lilcom"}, shard_size=shard_size)
    return [Path(p) for p in written["cuts"]]


def read_cuts_with_features(path: str | Path) -> CutSet:
    """The cuts of `path`, in memory; ValueError naming the problem when it is not a cut set
    (`read_cut_set`) or a cut has no features on disk."""
    from ds2.data.filter import has_features, read_cut_set

    cuts = read_cut_set(path)
    stored: dict[str, bool] = {}
    without = [c.id for c in cuts if not has_features(c, stored)]
    if without:
        raise ValueError(f"{len(without)} of the {len(cuts)} cuts of {path} have no features on disk (e.g. "
                         f"{without[0]}): give the cuts of `ds2 features`, or run it again")
    return cuts


def is_shar_dir(path: str | Path) -> bool:
    return Path(path).is_dir() and any(Path(path).glob("cuts.*.jsonl*"))


def shards_of_rank(shar_dir: str | Path, rank: int, world_size: int) -> list[int]:
    """Shard numbers that `rank` reads: k with k mod world_size == rank."""
    shards = sorted(int(p.name.split(".")[1]) for p in Path(shar_dir).glob("cuts.*.jsonl*"))
    if len(shards) < world_size:
        raise ValueError(f"{shar_dir} has {len(shards)} shards for {world_size} processes: write smaller shards "
                         "(ds2 shar --shard-size)")
    return [k for i, k in enumerate(shards) if i % world_size == rank]


def load_rank_shards(shar_dir: str | Path, rank: int = 0, world_size: int = 1) -> CutSet:
    """The cuts of this rank's shards, with their features in memory."""
    shar_dir = Path(shar_dir)
    mine = shards_of_rank(shar_dir, rank, world_size)
    fields = {"cuts": [str(next(shar_dir.glob(f"cuts.{k:06d}.jsonl*"))) for k in mine],
              "features": [str(shar_dir / f"features.{k:06d}.tar") for k in mine]}
    cuts = CutSet.from_shar(fields=fields).to_eager()
    log.info("rank %d reads shards %s of %s: %d cuts", rank, " ".join(map(str, mine)), shar_dir, len(cuts))
    return cuts
