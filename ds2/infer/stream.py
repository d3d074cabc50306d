"""Streaming recognition: audio in chunks of any size, partial text as it grows, then the final
result, equal to recognising the whole utterance at once (a test holds the tokens equal and the
log-probs within 1e-4). NumPy only: the step itself comes from an acoustic-model backend
(torch `StreamingStep`, or its ONNX export run by onnxruntime).

    rec = StreamingRecognizer(model)          # a forward-only model with a row convolution
    for chunk in chunks: rec.accept(chunk)    # float samples at model.sampling_rate; .partial
    result = rec.finish()                     # Transcript: text, words with times, confidence
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ds2.decode.greedy import collapse

NOT_FINAL = 2**62  # the step's valid_until while the utterance goes on (see streaming_step.py)


@dataclass(frozen=True)
class StreamGeometry:
    """The time geometry of a streaming model: (kernel, stride) of each convolution in time and
    the row convolution's look-ahead, from a model config (a dict, as checkpoints hold it)."""

    convs: tuple[tuple[int, int], ...]
    lookahead: int

    @classmethod
    def of(cls, model_cfg: dict) -> "StreamGeometry":
        convs = tuple((int(k[0]), int(s[0])) for k, s in zip(model_cfg["conv_kernels"], model_cfg["conv_strides"]))
        return cls(convs, 0 if model_cfg["bidirectional"] else int(model_cfg["lookahead"]))

    @property
    def stride(self) -> int:
        out = 1
        for _, s in self.convs:
            out *= s
        return out

    def output_frames(self, frames: int) -> int:
        """Output frames of an utterance of `frames` feature frames (zero padding at both ends)."""
        for k, s in self.convs:
            frames = (frames + 2 * (k // 2) - k) // s + 1
        return max(frames, 0)

    def computed_frames(self, frames: int) -> int:
        """Recurrent frames the convolutions have computed after `frames` input frames (no right padding)."""
        for k, s in self.convs:
            frames = max(0, (frames + k // 2 - k) // s + 1)
        return frames

    def first_step_frames(self) -> int:
        """Input frames of the first step: the fewest, in whole strides, with which every convolution
        computes at least one frame (the next steps take any number of whole strides)."""
        n = self.stride
        while True:
            frames, ok = n, True
            for k, s in self.convs:
                frames = (frames + k // 2 - k) // s + 1 if frames + k // 2 >= k else 0
                ok &= frames >= 1
            if ok:
                return n
            n += self.stride

    def lookahead_frames(self) -> int:
        """Feature frames a frame's output waits for: the convolutions' right context and the row
        convolution's look-ahead (algorithmic latency, in input frames)."""
        right, scale = 0, 1
        for k, s in self.convs:
            right += (k // 2) * scale
            scale *= s
        return right + self.lookahead * scale


class StreamingRecognizer:
    """Recognise one utterance from audio chunks of any size with a streaming `model` (a backend
    of ds2.infer.acoustic: stream_start, stream_step, front_end, geometry, tokenizer)."""

    def __init__(self, model):
        self.model = model
        self.geometry: StreamGeometry = model.geometry
        self.features = model.front_end.stream()
        self.state = model.stream_start()
        self.pending = np.zeros((0, model.front_end.num_features), np.float32)
        self.frames_in = 0  # feature frames given to steps
        self.started = False
        self.dropped = 0  # the row convolution's first outputs, which belong to no frame
        self.log_probs: list[np.ndarray] = []
        self.best: list[int] = []  # argmax per output frame so far (the partial text)

    def accept(self, samples: np.ndarray) -> str:
        """Take the next samples (float, at the model's rate); returns the partial text so far."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.pending = np.concatenate([self.pending, self.features.accept(samples)])
        need = self.geometry.stride if self.started else self.geometry.first_step_frames()
        if len(self.pending) >= need:
            n = len(self.pending) - len(self.pending) % self.geometry.stride
            self._step(self.pending[:n], NOT_FINAL)
            self.pending = self.pending[n:]
        return self.partial

    def _step(self, feats: np.ndarray, valid_until: int):
        out, self.state = self.model.stream_step(feats, valid_until, self.state)
        self.started = True
        self.frames_in += len(feats)
        skip = min(len(out), self.geometry.lookahead - self.dropped)
        self.dropped += skip
        out = out[skip:]
        if len(out):
            self.log_probs.append(out)
            self.best += out.argmax(axis=1).tolist()

    @property
    def partial(self) -> str:
        """Best-path text of the frames so far."""
        return self.model.tokenizer.decode(collapse(self.best, self.model.tokenizer.blank_id))

    def finish(self) -> np.ndarray:
        """End of the utterance: run the last frames (zero-padded as the whole-utterance pass pads)
        and return all (T', V) log-probs, exactly as many as the whole utterance gives."""
        self.pending = np.concatenate([self.pending, self.features.finish()])
        total = self.frames_in + len(self.pending)
        if total == 0:
            raise ValueError("no audio: the utterance is shorter than one feature frame")
        wanted = self.geometry.output_frames(total)
        g, s = self.geometry, self.geometry.stride
        zeros = 0
        while True:  # zero frames after the end, in whole strides, until the last frame's look-ahead is in
            fed = total + zeros
            step = fed - self.frames_in
            if step % s == 0 and step >= s and g.computed_frames(fed) >= wanted + g.lookahead \
                    and fed >= g.first_step_frames():
                break
            zeros += 1
        feats = np.concatenate([self.pending, np.zeros((zeros, self.pending.shape[1]), np.float32)])
        self.pending = self.pending[:0]
        self._step(feats, total)
        out = np.concatenate(self.log_probs) if self.log_probs else np.zeros((0, 0), np.float32)
        return out[:wanted]

