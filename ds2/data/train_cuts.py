"""The training cuts, read once and then served in any order an epoch needs, without holding
them in memory.

A LibriSpeech-size manifest (960 h, 281k cuts) takes gigabytes as Lhotse `Cut` objects, and
every DDP process would hold its own copy. `TrainCuts.from_cuts` reads a lazy CutSet once,
keeps the cuts that a check accepts (ds2.data.filter.TrainableCuts) as their JSON lines
in an anonymous temporary file, and keeps in memory only each cut's offset in that file and
its duration (12 bytes a cut). An epoch's order is then an array of indices: SortaGrad's
epoch 0 sorts the durations, later epochs draw a seeded permutation of the whole set (so the
shuffle is global, not limited to a buffer), and the cuts are parsed one at a time as the
sampler asks for them.

Shar shards (`ds2 shar`) hold their features inside the shards; their cuts are kept in memory
(`TrainCuts.from_cuts(..., on_disk=False)`), each rank holding only its own shards.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Callable, Iterable

import numpy as np
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.cut.set import deserialize_cut


class TrainCuts:
    """Training cuts by index: `durations[i]` and `cut(i)`; `in_order(order)` is a lazy CutSet."""

    def __init__(self, durations: np.ndarray, fetch: Callable[[int], Cut], keep_alive=None):
        self.durations = durations
        self._fetch = fetch
        if keep_alive is not None:  # the temporary file of from_cuts: closed (and so deleted) with self
            weakref.finalize(self, keep_alive.close)

    @classmethod
    def from_cuts(cls, cuts: Iterable[Cut], keep: Callable[[Cut], bool] = lambda cut: True,
                  on_disk: bool = True) -> "TrainCuts":
        """The cuts that `keep` accepts, in one pass over `cuts` (e.g. a lazy CutSet): on disk as
        JSON lines, or (`on_disk=False`, for cuts that carry their data, as Shar's do) in memory."""
        if not on_disk:
            kept = [cut for cut in cuts if keep(cut)]
            return cls(np.asarray([c.duration for c in kept], dtype=np.float64), kept.__getitem__)
        store = tempfile.TemporaryFile(prefix="ds2-train-cuts-")
        offsets, durations = [0], []
        for cut in cuts:
            if keep(cut):
                data = (json.dumps(cut.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
                store.write(data)
                offsets.append(offsets[-1] + len(data))
                durations.append(cut.duration)
        store.flush()
        ends = np.asarray(offsets, dtype=np.int64)
        fd = store.fileno()

        def fetch(i: int) -> Cut:
            # pread: no shared file position, so several iterators can walk the file at once
            start, end = int(ends[i]), int(ends[i + 1])
            return deserialize_cut(json.loads(os.pread(fd, end - start, start)))

        return cls(np.asarray(durations, dtype=np.float64), fetch, keep_alive=store)

    def __len__(self) -> int:
        return len(self.durations)

    @property
    def total_duration(self) -> float:
        return float(self.durations.sum())

    def cut(self, i: int) -> Cut:
        return self._fetch(int(i))

    def in_order(self, order: Iterable[int] | None = None) -> CutSet:
        """A lazy CutSet of the cuts at `order` (default: as read), parsed as it is walked."""
        return CutSet(_Ordered(self, np.arange(len(self)) if order is None else np.asarray(order)))

    def sorted_by_duration(self) -> CutSet:
        """Shortest first; equal durations keep the manifest's order (SortaGrad's epoch 0)."""
        return self.in_order(np.argsort(self.durations, kind="stable"))

    def shuffled(self, seed: int) -> CutSet:
        """A permutation of all the cuts that follows from `seed` alone."""
        return self.in_order(np.random.default_rng(seed).permutation(len(self)))

    def longest(self) -> Iterable[Cut]:
        """The cuts from the longest down, parsed one at a time."""
        for i in np.argsort(-self.durations, kind="stable"):
            yield self.cut(i)


class _Ordered:
    """A re-iterable walk over the cuts of `TrainCuts` at given indices."""

    def __init__(self, cuts: TrainCuts, order: np.ndarray):
        self.cuts, self.order = cuts, order

    def __iter__(self):
        return (self.cuts.cut(i) for i in self.order)

    def __len__(self) -> int:
        return len(self.order)
