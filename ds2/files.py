"""The names of an experiment folder's checkpoint files, without torch: `ds2 results` (ds2.report)
reads them in a process that never loads a model. ds2.checkpoint, which finds, loads and writes
the files, takes its names from here (see its docstring for what each file is)."""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_DIR = "checkpoints"  # under the experiment folder
BEST = "best.pt"
LAST = "last.pt"  # its presence marks a finished epoch
AVERAGED = "averaged.pt"
AVERAGE_REPORT = "averaged.json"  # what `ds2 average` compared and chose


def checkpoint_dir(exp_dir: str | Path) -> Path:
    """The checkpoints folder of an experiment folder."""
    return Path(exp_dir) / CHECKPOINT_DIR
