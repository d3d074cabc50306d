"""The one way files are written in ds2: to a temporary name beside the target, then renamed.

A reader (or a stage re-run after Ctrl-C, a crash or a full disk) sees the old file or the
complete new one, never a half-written one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` with a hidden temporary path in `path`'s folder, ending like `path`
    (Lhotse and torch choose the format by the suffix), then rename it over `path`. On any
    error, the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp.{os.getpid()}.{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`path.write_text(text)`, atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def save_atomic(obj, path: str | Path) -> Path:
    """`torch.save(obj, path)`, atomically."""
    import torch

    return write_atomic(path, lambda tmp: torch.save(obj, tmp))
