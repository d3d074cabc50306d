"""The acoustic model of a trained checkpoint in PyTorch: `TorchAcousticModel`, a backend of the
interface inference uses (`ds2.infer.backend.AcousticModel`, a typing.Protocol).
`ds2.infer.onnx_model.OnnxAcousticModel` is the same interface on onnxruntime, without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ds2.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
from ds2.config import config_to_dict
from ds2.infer import ModelError
from ds2.infer.frontend import FeatureFrontEnd, pad_batch
from ds2.infer.stream import StreamGeometry, state_batch_dim
from ds2.infer.streaming_step import StreamingStep, streaming_problem


def checkpoint_features(ckpt: dict, path) -> dict:
    """The feature settings a checkpoint was trained with (ModelError for one written before
    checkpoints held them)."""
    features = ckpt.get("features")
    if not features:
        raise ModelError(f"{path} does not say how its features were computed (written before checkpoints held "
                         f"their feature settings): retrain it, or decode prepared cut sets with `ds2 decode`")
    return features


class TorchAcousticModel:
    """A checkpoint's DeepSpeech2 on the CPU in float32 (`threads`: torch intra-op threads, 0: torch's default)."""

    backend = "torch"

    def __init__(self, checkpoint: str | Path, threads: int = 0):
        self.path = find_checkpoint(checkpoint)
        ckpt = load_checkpoint(self.path)
        self.features = checkpoint_features(ckpt, self.path)
        self.model, self.tokenizer, cfg = model_from_checkpoint(ckpt)
        self.model_config = config_to_dict(cfg)["model"]
        self.front_end = FeatureFrontEnd(self.features)
        self.geometry = StreamGeometry.of(self.model_config)
        self.streaming_problem = streaming_problem(cfg.model)
        self.streaming = self.streaming_problem is None
        self._step = StreamingStep(self.model) if self.streaming else None
        self.state_batch_dims = [state_batch_dim(n) for n in self._step.state_names()] if self.streaming else []
        if threads:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def log_probs(self, feats: list[np.ndarray]) -> list[np.ndarray]:
        """(T', V) float32 log-probs of each (T, F) feature matrix, run as one padded batch."""
        batch, lengths = pad_batch(feats)
        out, out_lens = self.model(torch.from_numpy(batch), torch.from_numpy(lengths))
        return [out[i, : out_lens[i]].numpy().copy() for i in range(len(feats))]

    def stream_start(self) -> list[np.ndarray]:
        if not self.streaming:
            raise ModelError(f"{self.path} cannot stream: {self.streaming_problem}")
        return [s.numpy() for s in self._step.initial_state()]

    @torch.no_grad()
    def stream_step(self, feats: np.ndarray, valid_until: np.ndarray, state):
        out, *state = self._step(torch.from_numpy(np.ascontiguousarray(feats)), torch.from_numpy(valid_until),
                                 *(torch.from_numpy(s) for s in state))
        return out.numpy(), [s.numpy() for s in state]
