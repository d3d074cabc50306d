"""Both inference backends implement the `AcousticModel` protocol (ds2/infer/backend.py), every
member it declares, streaming and not."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from random_checkpoint import random_checkpoint

from ds2.infer.acoustic import TorchAcousticModel
from ds2.infer.backend import AcousticModel
from ds2.infer.export import export_model
from ds2.infer.onnx_model import OnnxAcousticModel
from ds2.model import ModelConfig

SMALL = dict(conv_channels=[8, 8], conv_kernels=[[5, 11], [3, 11]], conv_strides=[[2, 2], [1, 1]], rnn_layers=1,
             rnn_hidden=16, fc_dims=[])
STREAMING = dict(SMALL, bidirectional=False, feature_norm="global", lookahead=2)
MEMBERS = set(typing.get_type_hints(AcousticModel, include_extras=False, localns={
    "Tokenizer": object, "FeatureFrontEnd": object, "StreamGeometry": object})) | {
    "log_probs", "stream_start", "stream_step"}


@pytest.mark.parametrize("config", [SMALL, STREAMING], ids=["bidirectional", "streaming"])
def test_torch_and_onnx_backends_are_acoustic_models(config, tmp_path):
    ckpt = random_checkpoint(tmp_path / "m.pt", ModelConfig(**config))
    backends = [TorchAcousticModel(ckpt), OnnxAcousticModel(export_model(ckpt, tmp_path / "onnx", "onnx"))]
    feats = [np.random.default_rng(0).normal(5, 1, (40, backends[0].front_end.num_features)).astype(np.float32)]
    for model in backends:
        assert isinstance(model, AcousticModel)
        assert all(hasattr(model, m) for m in MEMBERS), sorted(m for m in MEMBERS if not hasattr(model, m))
        assert model.log_probs(feats)[0].shape[1] == model.tokenizer.vocab_size
        assert model.streaming == (config is STREAMING) == (model.streaming_problem is None)
        if model.streaming:
            assert len(model.stream_start()) == len(model.state_batch_dims)
