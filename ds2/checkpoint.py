"""Checkpoints: every checkpoint file name, finding them, loading them, and what they hold.

Outside `ds2/train` because decoding reads them too (and must not import the trainer).

A checkpoint holds the model weights (with the feature normalisation), the resolved
config, the tokenizer and the number of feature bins, so `ds2 decode exp/<tag>`
needs nothing else; a training checkpoint also holds the optimizer, scheduler, RNG states
and the position in the epoch (see ds2.train.trainer.Trainer.state).

The files of `exp/<tag>/checkpoints/`, all named here (the fixed names in ds2.files) and nowhere else:

- `epoch-N.pt`: the end of epoch N (what `ds2 average` averages);
- `best.pt`: the epoch with the lowest dev CER so far; `last.pt`: the last finished epoch;
- `step-N.pt`: after optimizer step N, mid-epoch (only the newest few are kept);
- `averaged.pt` (with `averaged.json`, the comparison): written by `ds2 average` only when the
  average beats best.pt on dev; decoding then prefers it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from ds2.atomic import save_atomic
from ds2.model import DeepSpeech2
from ds2.text import Tokenizer, tokenizer_from_dict
from ds2.config import ExperimentConfig, config_from_dict

# the fixed names live in ds2.files, which `ds2 results` imports without torch
from ds2.files import AVERAGED, BEST, LAST, checkpoint_dir
_EPOCH = re.compile(r"epoch-(\d+)\.pt")
_STEP = re.compile(r"step-(\d+)\.pt")


def epoch_name(epoch: int) -> str:
    """File name of the checkpoint written at the end of epoch `epoch` (counted from 1)."""
    return f"epoch-{epoch}.pt"


def step_name(step: int) -> str:
    """File name of the mid-epoch checkpoint written after optimizer step `step`."""
    return f"step-{step}.pt"


def _numbered(ckpt_dir: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    found = []
    for p in Path(ckpt_dir).glob("*.pt"):
        m = pattern.fullmatch(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def step_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """checkpoints/step-N.pt files, oldest first."""
    return [p for _, p in _numbered(Path(ckpt_dir), _STEP)]


def epoch_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """checkpoints/epoch-N.pt files, in epoch order."""
    return [p for _, p in _numbered(Path(ckpt_dir), _EPOCH)]


def prune_step_checkpoints(ckpt_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` (at least one) step-N.pt files."""
    for old in step_checkpoints(ckpt_dir)[: -max(1, keep)]:
        old.unlink(missing_ok=True)


def save_step_checkpoint(state: dict, ckpt_dir: str | Path, step: int, keep: int) -> Path:
    """Write `ckpt_dir`/step-N.pt atomically and keep the newest `keep` step checkpoints. The
    oldest go first, so a kill at any moment leaves no more than `keep` (with keep >= 2; with
    keep 1 the previous one stays until the new one is written)."""
    prune_step_checkpoints(ckpt_dir, keep - 1)
    path = Path(ckpt_dir) / step_name(step)
    save_atomic(state, path)
    prune_step_checkpoints(ckpt_dir, keep)
    return path


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
    ckpt_dir = checkpoint_dir(p)
    for name in (AVERAGED, BEST, LAST):
        if (ckpt_dir / name).exists():
            return ckpt_dir / name
    if step_checkpoints(ckpt_dir):
        raise FileNotFoundError(f"{p} has no finished epoch yet (only step checkpoints, no best.pt or last.pt): "
                                f"finish its training with ds2 train ... --exp-dir {p} --resume")
    raise FileNotFoundError(f"{p} has no checkpoint (no {AVERAGED}, {BEST} or {LAST} in {ckpt_dir}): "
                            f"train first with ds2 train ... --exp-dir {p}")


def model_from_checkpoint(ckpt: dict) -> tuple[DeepSpeech2, Tokenizer, ExperimentConfig]:
    """Rebuild the model (in eval mode), its tokenizer and config from a loaded checkpoint."""
    cfg = config_from_dict(ckpt["config"])
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    model = DeepSpeech2(cfg.model, ckpt["num_features"], tokenizer.vocab_size)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, tokenizer, cfg


def resume_candidates(ckpt_dir: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Checkpoints a run could resume from, newest first: step-N.pt, last.pt (the end of the last
    finished epoch; first among equally new ones) and epoch-N.pt; and the files whose step could
    not be read, with the reason. last.pt's and epoch-N.pt's steps are read with mmap (cheap)."""
    ckpt_dir = Path(ckpt_dir)
    candidates, bad = [(step, 0, p) for step, p in _numbered(ckpt_dir, _STEP)], []
    for rank, paths in ((2, [ckpt_dir / LAST]), (1, epoch_checkpoints(ckpt_dir))):
        for p in paths:
            if not p.exists():
                continue
            try:
                candidates.append((int(load_checkpoint(p, mmap=True)["step"]), rank, p))
            except (CheckpointError, KeyError, TypeError, ValueError) as e:
                bad.append((p, str(e) if isinstance(e, CheckpointError) else f"{p} has no step"))
    return [p for *_, p in sorted(candidates, key=lambda c: c[:2], reverse=True)], bad


def load_latest_checkpoint(ckpt_dir: str | Path) -> tuple[Path | None, dict | None, list[tuple[Path, str]]]:
    """The newest checkpoint in `ckpt_dir` that loads (path and contents; None, None if there is
    none), and the newer ones that did not, with the reason (a truncated or corrupt file)."""
    candidates, bad = resume_candidates(ckpt_dir)
    for p in candidates:
        try:
            return p, load_checkpoint(p), bad
        except CheckpointError as e:
            bad.append((p, str(e)))
    return None, None, bad


def seed_generators(seed: int) -> None:
    """Seed every random generator whose state `rng_state` saves (torch, numpy, Python)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict:
    """The states of every random generator training draws from, as tensors and numbers
    (so that `torch.load(..., weights_only=True)` reads them back)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
             "python": [version, torch.tensor(mt, dtype=torch.int64), py_gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Put back the generator states `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, mt, py_gauss = state["python"]
    random.setstate((version, tuple(mt.tolist()), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
