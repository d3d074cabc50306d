"""Checkpoints of random DeepSpeech2 models for the inference tests: no training is needed to
compare two computations of the same function (streaming and whole, export and torch)."""

from __future__ import annotations

from pathlib import Path

import torch

from ds2.atomic import save_atomic
from ds2.config import ExperimentConfig, config_to_dict
from ds2.data.features import FeatureConfig, feature_settings
from ds2.infer.frontend import FeatureFrontEnd
from ds2.model import DeepSpeech2, ModelConfig
from ds2.text import CharTokenizer


def random_checkpoint(path: Path, cfg: ModelConfig, seed: int = 0, features: FeatureConfig | None = None) -> Path:
    """A random-weight model of `cfg` with non-trivial normalisation and batch-norm statistics (from
    a few training-mode passes, then random affine parameters), saved at `path` with everything
    inference needs (tokenizer, feature settings: `features`, by default 80-bin fbank)."""
    torch.manual_seed(seed)
    tokenizer = CharTokenizer()
    settings = feature_settings(features or FeatureConfig(kind="fbank"), 16000)
    dim = FeatureFrontEnd(settings).num_features  # 80 fbank bins (+ 2 with pitch), or 161 spectrogram bins
    model = DeepSpeech2(cfg, dim, tokenizer.vocab_size)
    model.set_normalization(torch.randn(dim) + 5.0, torch.rand(dim) + 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(3, 60, dim) * 2 + 5, torch.tensor([60, 41, 25]))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
    model.eval()
    save_atomic({"model": model.state_dict(), "config": config_to_dict(ExperimentConfig(model=cfg)),
                 "tokenizer": tokenizer.to_dict(), "num_features": dim, "frame_shift": settings["frame_shift"],
                 "features": settings}, path)
    return path
