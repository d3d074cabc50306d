"""What stops training, and what only skips a batch."""

from __future__ import annotations


class BatchSkipped(Exception):
    """A batch the loop leaves out (non-finite loss, out of memory); training goes on."""


class TrainingStopped(RuntimeError):
    """Training cannot go on; the message says what to change."""
