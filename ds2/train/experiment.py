"""The experiment folder of a training run: whether it can take the run (`accept_run`), and
the run's log (`setup_logging`: the console, and EXP/log/train.log on rank 0)."""

from __future__ import annotations

import logging
from pathlib import Path

from ds2.checkpoint import CheckpointError, load_latest_checkpoint
from ds2.files import checkpoint_dir
from ds2.config import ExperimentConfig, config_from_dict, config_to_dict
from ds2.text import Tokenizer
from ds2.train.errors import TrainingStopped


def model_differences(old: dict, new: dict) -> list[str]:
    """`model.key old -> new` for every model option that differs between two config dicts."""
    return [f"model.{k} {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]


def accept_run(cfg: ExperimentConfig, tokenizer: Tokenizer, exp_dir: Path, resume: bool):
    """Whether `exp_dir` can take this run, decided before anything is written there: an existing
    run needs --resume, and a resumed run the model and tokenizer it was trained with. Returns the
    checkpoint to resume from (path, contents, or None, None) and the newer files that did not load."""
    ckpt_dir = checkpoint_dir(exp_dir)
    existing = sorted(ckpt_dir.glob("*.pt")) if ckpt_dir.is_dir() else []
    if not existing:
        return None, None, []
    if not resume:
        raise FileExistsError(f"{exp_dir} already holds a training run ({len(existing)} checkpoints); pass --resume "
                              "to continue it or choose another --exp-dir")
    path, ckpt, bad = load_latest_checkpoint(ckpt_dir)
    if path is None:
        if not bad:  # only best.pt / averaged.pt: nothing says where training stopped
            raise TrainingStopped(f"{exp_dir} has no checkpoint to resume from (no last.pt, step-N.pt or epoch-N.pt)")
        raise CheckpointError(f"no checkpoint of {ckpt_dir} loads, so there is nothing to resume from: "
                              + "; ".join(reason for _, reason in bad))
    try:
        old_model = config_to_dict(config_from_dict(ckpt["config"]))["model"]
    except ValueError as e:
        raise CheckpointError(f"{path} holds a config this version cannot read: {e}") from None
    changed = model_differences(old_model, config_to_dict(cfg)["model"])
    if changed:
        raise TrainingStopped(f"--resume: the model config differs from the one {exp_dir} was trained with "
                              f"({', '.join(changed)}); resume with its config ({exp_dir / 'config.yaml'}) or train "
                              "the new model in another --exp-dir")
    if ckpt["tokenizer"] != tokenizer.to_dict():
        raise TrainingStopped(f"--resume: the tokenizer of --lang-dir differs from the one {exp_dir} was trained "
                              "with; give the --lang-dir of that run, or train in another --exp-dir")
    return path, ckpt, bad


def setup_logging(log_file: Path | None, rank: int) -> None:
    """Log to stderr (rank 0 at INFO, the others only warnings) and, on rank 0, to `log_file`."""
    handlers = [logging.StreamHandler()]
    if log_file is not None and rank == 0:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s", handlers=handlers, force=True)
