"""Checkpoints: written atomically, loaded with weights_only=True, self-contained.

Outside `ds2/train` because decoding reads them too (and must not import the trainer).

A checkpoint holds the model weights (with the feature normalisation), the resolved
config, the tokenizer and the number of feature bins, so `ds2 decode exp/<tag>`
needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ds2.model import DeepSpeech2
from ds2.text import Tokenizer, tokenizer_from_dict
from ds2.config import ExperimentConfig, config_from_dict


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, corrupt, or not a ds2 checkpoint);
    the message names the file, in one line."""


CHECKPOINT_KEYS = ("model", "config", "tokenizer", "num_features")


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """A checkpoint written by `ds2.atomic.save_atomic`, read with weights_only=True. Raises
    CheckpointError naming `path` if it cannot be read, FileNotFoundError if it is missing.
    With `mmap`, tensors are mapped rather than read (cheap, to look at its step)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except Exception:
            if not mmap:
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=True)  # an old, non-zip format?
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a bad file
        first = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise CheckpointError(f"checkpoint {path} cannot be read ({path.stat().st_size} bytes; truncated or "
                              f"corrupt?): {type(e).__name__}{': ' + first if first else ''}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path} is not a ds2 checkpoint (it lacks "
                              f"{', '.join(k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt)})")
    return ckpt


def find_checkpoint(exp_or_file: str | Path) -> Path:
    """A checkpoint file, or the one of an experiment folder that decoding uses: averaged.pt
    (written by `ds2 average` only when it beats best.pt on dev), else best.pt, else last.pt.
    Raises FileNotFoundError saying what is missing and what to run."""
    p = Path(exp_or_file)
    if p.is_file():
        return p
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist (give an experiment folder of `ds2 train` or a checkpoint file)")
    for name in ("averaged.pt", "best.pt", "last.pt"):
        if (p / "checkpoints" / name).exists():
            return p / "checkpoints" / name
    if list(p.glob("checkpoints/step-*.pt")):
        raise FileNotFoundError(f"{p} has no finished epoch yet (only step checkpoints, no best.pt or last.pt): "
                                f"finish its training with ds2 train ... --exp-dir {p} --resume")
    raise FileNotFoundError(f"{p} has no checkpoint (no averaged.pt, best.pt or last.pt in {p / 'checkpoints'}): "
                            f"train first with ds2 train ... --exp-dir {p}")


def model_from_checkpoint(ckpt: dict) -> tuple[DeepSpeech2, Tokenizer, ExperimentConfig]:
    """Rebuild the model (in eval mode), its tokenizer and config from a loaded checkpoint."""
    cfg = config_from_dict(ckpt["config"])
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    model = DeepSpeech2(cfg.model, ckpt["num_features"], tokenizer.vocab_size)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, tokenizer, cfg
