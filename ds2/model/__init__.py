"""The Deep Speech 2 model: one definition, configured by `ModelConfig`."""

from ds2.model.config import ModelConfig
from ds2.model.deepspeech2 import DeepSpeech2

__all__ = ["DeepSpeech2", "ModelConfig"]
