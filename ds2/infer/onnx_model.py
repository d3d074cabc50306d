"""The acoustic model of a `ds2 export --format onnx` folder on onnxruntime: NumPy in and out,
no torch (this module and what it imports never import it).

`OnnxAcousticModel` is a backend of the interface inference uses (`ds2.infer.backend.AcousticModel`,
a typing.Protocol), as `ds2.infer.acoustic.TorchAcousticModel` is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ds2.infer import ModelError
from ds2.infer.frontend import FeatureFrontEnd, pad_batch
from ds2.infer.stream import StreamGeometry, state_batch_dim
from ds2.text import tokenizer_from_dict

MANIFEST = "ds2_model.json"  # what a runtime needs besides the graphs (written by ds2.infer.export)


class ExportError(ModelError):
    """An export folder that cannot be used as asked (one line, naming the folder)."""


def _session(path: Path, threads: int, again: str):
    """An onnxruntime session of the graph `path`; ExportError, ending with `again` (how to write
    it anew), when the file is missing or onnxruntime cannot load it."""
    import onnxruntime as ort

    if not path.is_file():
        raise ExportError(f"{path} is missing: {again}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors (protobuf, graph) share no public type
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ExportError(f"{path} cannot be loaded by onnxruntime (truncated or corrupt? {reason}): {again}") from None


class OnnxAcousticModel:
    """The ONNX export in `export_dir` (ds2_model.json, model.onnx, for streaming models also
    stream_step.onnx) run by onnxruntime on the CPU with `threads` intra-op threads (0: its default)."""

    backend = "onnxruntime"

    def __init__(self, export_dir: str | Path, threads: int = 1):
        self.path = Path(export_dir)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise ExportError(f"{self.path} is not a ds2 export folder (no {MANIFEST}; write one with "
                              f"`ds2 export MODEL --format onnx`)")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ExportError(f"{manifest_path} cannot be read: {e}") from None
        m = self.manifest
        if m.get("format") != "onnx":
            raise ExportError(f"{self.path} holds a {m.get('format')} export, not ONNX: onnxruntime needs "
                              f"`ds2 export MODEL --format onnx`")
        self.tokenizer = tokenizer_from_dict(m["tokenizer"])
        self.features = m["features"]
        self.front_end = FeatureFrontEnd(self.features)
        self.model_config = m["model"]
        self.geometry = StreamGeometry.of(self.model_config)
        self.streaming_problem = m.get("streaming_problem")
        self.streaming = bool(m.get("streaming")) and "stream" in m
        if m.get("streaming") and "stream" not in m:
            self.streaming_problem = "its export has no streaming step"
        self.num_features = int(m["num_features"])
        self.vocab_size = int(m["vocab_size"])
        again = f"export it again with `ds2 export {m.get('checkpoint', 'MODEL')} --format onnx -o {self.path}`"
        self._session = _session(self.path / m["model_file"], threads, again)
        self._inputs, self._outputs = m["inputs"], m["outputs"]
        self._step = None
        self.state_batch_dims = []
        if self.streaming:
            s = m["stream"]
            self._step = _session(self.path / s["model_file"], threads, again)
            self._state = s["state"]
            self.state_batch_dims = [state_batch_dim(v["name"]) for v in self._state]
            self.batched_step = bool(s.get("batched"))  # exports before batching took one stream a step
            self._step_inputs = s["inputs"] + [v["name"] for v in self._state]
            self._step_outputs = s["outputs"] + [f"{v['name']}_out" for v in self._state]

    def log_probs(self, feats: list[np.ndarray]) -> list[np.ndarray]:
        """(T', V) float32 log-probs of each (T, F) feature matrix, run as one padded batch."""
        batch, lengths = pad_batch(feats)
        out, out_lens = self._session.run(self._outputs, {self._inputs[0]: batch, self._inputs[1]: lengths})
        return [out[i, : out_lens[i]].copy() for i in range(len(feats))]

    def stream_start(self) -> list[np.ndarray]:
        if not self.streaming:
            raise ExportError(f"{self.path} cannot stream: {self.streaming_problem}")
        return [np.zeros(v["shape"], dtype=np.dtype(v["dtype"])) for v in self._state]

    def stream_step(self, feats: np.ndarray, valid_until: np.ndarray, state):
        if len(feats) > 1 and not self.batched_step:
            raise ExportError(f"{self.path}'s streaming step takes one stream at a time: export it again")
        feed = dict(zip(self._step_inputs, [np.ascontiguousarray(feats, dtype=np.float32),
                                            np.asarray(valid_until, dtype=np.int64), *state]))
        out, *state = self._step.run(self._step_outputs, feed)
        return out, state
