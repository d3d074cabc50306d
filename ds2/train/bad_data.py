"""Bookkeeping of what training leaves out: cuts a batch could not hold (unreadable features,
untokenizable text) and batches skipped whole (non-finite loss, out of memory), each counted and
named in the log; too many skipped batches in a row stop training with what to change."""

from __future__ import annotations

import logging

from ds2.train.errors import TrainingStopped

log = logging.getLogger("ds2.train")

EMPTY_BATCH = "empty batch"  # not a fault: e.g. every cut of a rank's batch was left out


class BadData:
    """The cuts and batches left out so far in a run."""

    def __init__(self, max_bad_batches: int):
        self.max_bad_batches = max_bad_batches
        self.cuts: dict[str, list[str]] = {}  # reason -> ids of cuts left out of batches
        self.batches: dict[str, int] = {}  # reason -> batches skipped
        self.skipped_in_a_row = 0

    def skipped_cuts(self, skipped: list[tuple[str, str]]) -> None:
        """Count and name the (cut id, reason) pairs a batch left out."""
        for cut_id, reason in skipped:
            self.cuts.setdefault(reason, []).append(cut_id)
            log.warning("skipped cut %s: %s", cut_id, reason)

    def trained(self) -> None:
        """A batch was trained on: the count of skipped batches in a row starts again."""
        self.skipped_in_a_row = 0

    def skipped_batch(self, reason: str, cut_ids: list[str], step: int) -> None:
        """Count a skipped batch, name its cuts, and stop after too many in a row."""
        self.batches[reason] = self.batches.get(reason, 0) + 1
        self.skipped_in_a_row += 1
        if reason != EMPTY_BATCH:
            log.warning("skipped a batch (%s) at step %d; its cuts: %s", reason, step, " ".join(cut_ids))
        if self.skipped_in_a_row > self.max_bad_batches:
            raise TrainingStopped(
                f"{self.skipped_in_a_row} batches in a row were skipped (the last: {reason}); training stops. "
                "Non-finite losses: lower train.lr or check the data named above; out of memory: lower "
                "train.max_duration")

    def log_summary(self) -> None:
        for reason, ids in self.cuts.items():
            log.warning("cuts skipped so far (%s): %d: %s", reason, len(ids), " ".join(ids[:20]) +
                        (" ..." if len(ids) > 20 else ""))
        for reason, n in self.batches.items():
            if reason != EMPTY_BATCH:
                log.warning("batches skipped so far (%s): %d", reason, n)
