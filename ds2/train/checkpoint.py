"""Checkpoints: written atomically, loaded with weights_only=True, self-contained.

A checkpoint holds the model weights (with the feature normalisation), the resolved
config, the tokenizer and the number of feature bins, so `ds2 decode exp/<tag>`
needs nothing else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ds2.model import DeepSpeech2
from ds2.text import Tokenizer, tokenizer_from_dict
from ds2.train.config import ExperimentConfig, config_from_dict


def save_atomic(obj, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def find_checkpoint(exp_or_file: str | Path) -> Path:
    """A checkpoint file, or the one of an experiment folder that decoding uses: averaged.pt
    (written by `ds2 average` only when it beats best.pt on dev), else best.pt, else last.pt."""
    p = Path(exp_or_file)
    if p.is_file():
        return p
    for name in ("averaged.pt", "best.pt", "last.pt"):
        if (p / "checkpoints" / name).exists():
            return p / "checkpoints" / name
    raise FileNotFoundError(f"no checkpoint in {p}/checkpoints (train first: ds2 train ... --exp-dir {p})")


def model_from_checkpoint(ckpt: dict) -> tuple[DeepSpeech2, Tokenizer, ExperimentConfig]:
    """Rebuild the model (in eval mode), its tokenizer and config from a loaded checkpoint."""
    cfg = config_from_dict(ckpt["config"])
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    model = DeepSpeech2(cfg.model, ckpt["num_features"], tokenizer.vocab_size)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, tokenizer, cfg
