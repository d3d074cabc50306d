"""Experiment configuration in three layers: dataclass defaults, a YAML file, CLI overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ds2.model import ModelConfig


@dataclass
class TrainConfig:
    """How to train: optimisation, batching, augmentation and logging."""

    epochs: int = 10  # passes over the training cuts
    max_duration: float = 200.0  # seconds of audio per batch (per process under DDP)
    max_cuts: int = 0  # most utterances per batch (per process under DDP); 0: no limit
    lr: float = 1.5e-3  # peak learning rate of AdamW
    warmup_steps: int = 300  # linear warm-up to the peak
    final_lr_ratio: float = 0.02  # cosine decay ends at lr * final_lr_ratio after the last epoch
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    grad_clip: float = 5.0  # maximum global gradient norm
    sortagrad: bool = True  # epoch 0 in order of increasing duration (DS2 section 3.1)
    num_buckets: int = 10  # duration buckets of the shuffling sampler after epoch 0
    spec_augment: bool = True  # Lhotse SpecAugment on training batches
    freq_masks: int = 2  # SpecAugment frequency masks per utterance
    freq_mask_size: int = 15  # their maximum width in feature bins
    time_masks: int = 4  # SpecAugment time masks (upper bound; shorter utterances get fewer)
    time_mask_size: int = 30  # their maximum width in frames
    time_warp: int = 0  # SpecAugment time-warp factor (0: off)
    freq_warp: float = 0.0  # vocal tract length perturbation: spectra stretched by up to +-this share (0: off)
    dtype: str = "float32"  # autocast precision: float32, bfloat16 (fast on CPUs with AVX-512 BF16 / AMX) or float16
    num_workers: int = 1  # DataLoader worker processes that load and augment batches
    threads: int = 0  # torch intra-op threads (0: all cores)
    seed: int = 42
    log_interval: int = 25  # steps between TensorBoard/log lines
    save_every_steps: int = 500  # a resumable checkpoint every N optimizer steps (0: only at epoch ends)
    keep_last_steps: int = 3  # step checkpoints kept (older ones are deleted)
    max_bad_batches: int = 20  # batches skipped in a row (non-finite loss, out of memory) before training stops
    check_largest_batch: bool = True  # before the first epoch, run the largest batch once: an OOM shows at once


@dataclass
class ExperimentConfig:
    """Everything `ds2 train` needs; written resolved to `exp/<tag>/config.yaml`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _apply(obj, values: dict, where: str):
    for key, value in values.items():
        if not hasattr(obj, key):
            raise ValueError(f"unknown option {where}{key}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}{key} is a section; give it a mapping")
            _apply(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, _coerce(value, current, f"{where}{key}"))


def _coerce(value, current, name: str):
    """Give `value` the type of the default it replaces (YAML reads `2e-3` as a string)."""
    try:
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(current, float) and isinstance(value, (int, float, str)):
            return float(value)
        if isinstance(current, int) and isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(current, int):
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} must be of type {type(current).__name__}, not {value!r}") from None
    return value


def parse_override(text: str) -> tuple[list[str], object]:
    """`model.rnn_layers=3` -> (["model", "rnn_layers"], 3); the value is read as YAML."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form section.key=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def resolve_config(config_file: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults, then `config_file`, then `overrides` ("section.key=value")."""
    cfg = ExperimentConfig()
    if config_file is not None:
        values = yaml.safe_load(Path(config_file).read_text()) or {}
        _apply(cfg, values, "")
    for text in overrides:
        path, value = parse_override(text)
        nested = value
        for key in reversed(path):
            nested = {key: nested}
        _apply(cfg, nested, "")
    cfg.model.__post_init__()
    return cfg


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> ExperimentConfig:
    cfg = ExperimentConfig()
    _apply(cfg, d, "")
    return cfg


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
