"""The Deep Speech 2 model: one definition, configured by `ModelConfig`.

`DeepSpeech2` (torch) is imported on first use, so that reading a config (`ds2.config`, which
`ds2 train` checks before anything loads) does not import torch."""

from ds2.model.config import ModelConfig

__all__ = ["DeepSpeech2", "ModelConfig"]


def __getattr__(name: str):
    if name == "DeepSpeech2":
        from ds2.model.deepspeech2 import DeepSpeech2

        return DeepSpeech2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
