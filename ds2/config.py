"""Experiment configuration in three layers: dataclass defaults, a YAML file, CLI overrides.

Every value is checked when the config is resolved (its type against the field's, its range
in `validate`), so a bad option stops `ds2 train` with a one-line message before any data or
model loads.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ds2.atomic import write_text_atomic
from ds2.model import ModelConfig
from ds2.precision import CHOICES as DTYPE_CHOICES


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
    aux_weight: float = 0.5  # weight of the auxiliary CTC loss (a model with model.aux_units)
    grad_clip: float = 5.0  # maximum global gradient norm
    sortagrad: bool = True  # epoch 0 in order of increasing duration (DS2 section 3.1)
    num_buckets: int = 10  # duration buckets of the shuffling sampler after epoch 0 (fewer if there are few cuts)
    spec_augment: bool = True  # Lhotse SpecAugment on training batches
    freq_masks: int = 2  # SpecAugment frequency masks per utterance
    freq_mask_size: int = 15  # their maximum width in feature bins
    time_masks: int = 4  # SpecAugment time masks (upper bound; shorter utterances get fewer)
    time_mask_size: int = 30  # their maximum width in frames
    time_warp: int = 0  # SpecAugment time-warp factor (0: off)
    freq_warp: float = 0.0  # vocal tract length perturbation: spectra stretched by up to +-this share (0: off)
    # Noise mixed into training utterances (never dev) in the feature domain by Lhotse's CutMix (DS2
    # added noise to part of its training audio): cut sets with features of noise recordings, e.g.
    # MUSAN's from `ds2 prepare musan` and `ds2 features ... --prefix musan --recordings-only`, of
    # the training features' kind.
    noise_cuts: str = ""  # comma-separated paths of the noise cut sets ("": no noise)
    noise_prob: float = 0.5  # share of training utterances that get noise
    noise_snr: list[float] = field(default_factory=lambda: [10.0, 20.0])  # [low, high] dB, drawn per utterance
    # Autocast precision: auto, float32, bfloat16 or float16 (GPUs, with loss scaling). auto is
    # bfloat16 only where the device computes it natively (GPUs that have it, CPUs whose bfloat16
    # matmul beats float32: AVX-512-BF16 / AMX), else float32. exp/config.yaml and the checkpoints
    # hold the resolved precision, never auto.
    dtype: str = "auto"
    num_workers: int = 1  # DataLoader worker processes that load and augment batches
    threads: int = 0  # torch intra-op threads (0: all cores)
    seed: int = 42  # seed of the initial weights, the batches' order and the augmentation draws
    log_interval: int = 25  # steps between TensorBoard/log lines
    save_every_steps: int = 500  # a resumable checkpoint every N optimizer steps (0: only at epoch ends)
    keep_last_steps: int = 3  # step checkpoints kept (older ones are deleted)
    max_bad_batches: int = 20  # batches skipped in a row (non-finite loss, out of memory) before training stops
    check_largest_batch: bool = True  # before the first epoch, run the largest batch once: an OOM shows at once

    def validate(self) -> None:
        """Raise ValueError naming the first option out of its range."""

        def check(name: str, ok: bool, rule: str):
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                ok, rule = False, rule if "finite" in rule else f"finite and {rule}"
            if not ok:
                raise ValueError(f"train.{name} must be {rule}, not {value!r}")

        if self.dtype not in DTYPE_CHOICES:
            raise ValueError(f"train.dtype must be one of {', '.join(DTYPE_CHOICES)}, not {self.dtype!r}")
        check("epochs", self.epochs >= 1, "at least 1")
        check("max_duration", self.max_duration > 0, "> 0 (seconds of audio per batch)")
        check("max_cuts", self.max_cuts >= 0, ">= 0 (0: no limit)")
        check("lr", self.lr > 0, "finite and > 0")
        check("warmup_steps", self.warmup_steps >= 0, ">= 0")
        check("final_lr_ratio", 0 <= self.final_lr_ratio <= 1, "between 0 and 1")
        check("weight_decay", self.weight_decay >= 0, ">= 0")
        check("aux_weight", self.aux_weight >= 0, ">= 0")
        check("grad_clip", self.grad_clip > 0, "> 0")
        check("num_buckets", self.num_buckets >= 1, "at least 1")
        for name in ("freq_masks", "freq_mask_size", "time_masks", "time_mask_size", "time_warp"):
            check(name, getattr(self, name) >= 0, ">= 0")
        check("freq_warp", 0 <= self.freq_warp < 1, ">= 0 and < 1")
        check("noise_prob", 0 <= self.noise_prob <= 1, "between 0 and 1")
        snr = self.noise_snr
        check("noise_snr", len(snr) == 2 and all(math.isfinite(v) for v in snr) and snr[0] <= snr[1],
              "[low, high] in dB with low <= high (e.g. [10, 20]; [15, 15] for one SNR)")
        check("num_workers", self.num_workers >= 0, ">= 0")
        check("threads", self.threads >= 0, ">= 0 (0: all cores)")
        check("log_interval", self.log_interval >= 1, "at least 1")
        check("save_every_steps", self.save_every_steps >= 0, ">= 0 (0: only at epoch ends)")
        check("keep_last_steps", self.keep_last_steps >= 1, "at least 1")
        check("max_bad_batches", self.max_bad_batches >= 0, ">= 0")


@dataclass
class ExperimentConfig:
    """Everything `ds2 train` needs; written resolved to `exp/<tag>/config.yaml`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.model.__post_init__()
        self.train.validate()
        if self.model.aux_units and not self.train.aux_weight:
            raise ValueError(f"model.aux_units {self.model.aux_units} needs train.aux_weight > 0 (its head would "
                             f"never be trained)")


def _apply(obj, values, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where.rstrip('.') or 'the config'} must be a mapping of options, "
                         f"not a {type(values).__name__} ({values!r:.60})")
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        if not isinstance(key, str) or not hasattr(obj, key):
            raise ValueError(f"unknown option {where}{key}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}{key} is a section; give it a mapping")
            _apply(current, value, f"{where}{key}.")
        elif isinstance(value, dict):
            inner = next(iter(value), "")
            raise ValueError(f"{where}{key} is an option, not a section: {where}{key}.{inner} does not exist "
                             f"(give a value: {where}{key}=...)")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{where}{key}"))


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)


def _coerce(value, hint, name: str):
    """`value` as the field's type `hint` (YAML reads `2e-3` as a string); ValueError if it is not."""
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list ({hint}), not {value!r}")
        return [_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    ok = True
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            ok = False
        else:
            try:
                return float(value)
            except ValueError:
                ok = False
    elif hint is str:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{name} must be of type {_type_name(hint)}, not {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], object]:
    """`model.rnn_layers=3` -> (["model", "rnn_layers"], 3); the value is read as YAML."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form section.key=value")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ValueError(f"override {text!r}: the value is not valid YAML ({_yaml_problem(e)})") from None
    return key.strip().split("."), parsed


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong, and where."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def read_config_file(config_file: str | Path) -> dict:
    """The mapping of a YAML config file (ValueError, naming the file, if it is not one)."""
    try:
        values = yaml.safe_load(Path(config_file).read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{config_file} is not valid YAML: {_yaml_problem(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {config_file}: {e}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{config_file} must be a YAML mapping with model: and train: sections, "
                         f"not a {type(values).__name__}")
    return values


def resolve_config(config_file: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults, then `config_file`, then `overrides` ("section.key=value"); validated."""
    cfg = ExperimentConfig()
    if config_file is not None:
        values = read_config_file(config_file)
        try:
            _apply(cfg, values, "")
        except ValueError as e:
            raise ValueError(f"{config_file}: {e}") from None
    for text in overrides:
        path, value = parse_override(text)
        if not all(path):
            raise ValueError(f"override {text!r}: empty key")
        nested = value
        for key in reversed(path):
            nested = {key: nested}
        _apply(cfg, nested, "")
    cfg.validate()
    return cfg


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> ExperimentConfig:
    cfg = ExperimentConfig()
    _apply(cfg, d, "")
    return cfg


def save_config(cfg: ExperimentConfig, path: str | Path, comment: str | None = None) -> None:
    """Write `cfg` as YAML, with `comment` (e.g. why train.dtype is what it is) as `# ` lines on top."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    if comment:
        text = "".join(f"# {line}\n" for line in comment.splitlines()) + text
    write_text_atomic(path, text)
