"""The interface inference runs an acoustic model through: `AcousticModel`.

Two backends implement it: `ds2.infer.acoustic.TorchAcousticModel` (a checkpoint, in PyTorch) and
`ds2.infer.onnx_model.OnnxAcousticModel` (an export of `ds2 export`, on onnxruntime without torch).
`Transcriber`, `StreamingRecognizer` (ds2.infer.stream) and `ds2 serve`'s batch dispatch use only
what is declared here, so a new backend is one class with these members, chosen by name in
`ds2.infer.transcriber.load_model`. NumPy only: importing this module loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ds2.infer.frontend import FeatureFrontEnd
    from ds2.infer.stream import StreamGeometry
    from ds2.text import Tokenizer


@runtime_checkable
class AcousticModel(Protocol):
    """A trained DeepSpeech2 acoustic model: features in, CTC log-probs out, whole or streamed."""

    backend: str  # its name: "torch", "onnxruntime"
    tokenizer: Tokenizer
    front_end: FeatureFrontEnd  # audio -> the (T, F) features the model was trained on
    model_config: dict[str, Any]  # the model section of the training config
    geometry: StreamGeometry  # how output frames map to feature frames (stride, context)
    streaming: bool  # whether it can stream (forward-only, global feature normalisation)
    streaming_problem: str | None  # why it cannot stream (None when it can)
    state_batch_dims: list[int]  # along which dimension each state array stacks streams ([] if not streaming)

    def log_probs(self, feats: list[np.ndarray]) -> list[np.ndarray]:
        """(T', V) float32 log-probs of each (T, F) feature matrix."""
        ...

    def stream_start(self) -> list[np.ndarray]:
        """The initial state of one stream (a list of arrays); an error for a model that cannot stream."""
        ...

    def stream_step(self, feats: np.ndarray, valid_until: np.ndarray,
                    state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step of B streams at once: features (B, N, F), how many of each stream's N frames are
        real (B,), and their states stacked along `state_batch_dims` -> ((B, n, V) log-probs, new
        state). `ds2.infer.stream.run_steps` stacks and unstacks the streams."""
        ...
