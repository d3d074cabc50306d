"""Streaming recognition: audio in chunks of any size, partial text as it grows, then the final
result, equal to recognising the whole utterance at once (a test holds the tokens equal and the
log-probs within 1e-4). NumPy only: the step itself comes from an acoustic-model backend
(torch `StreamingStep`, or its ONNX export run by onnxruntime).

    rec = StreamingRecognizer(model)          # a forward-only model with a row convolution
    for chunk in chunks: rec.accept(chunk)    # float samples at model.sampling_rate; .partial
    log_probs = rec.finish()                  # (T', V), for a decoding method

Many streams batched together (ds2.serve): `push` audio to each, gather their `next_step`s and
run them with `run_steps`, one forward pass per group of equal shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ds2.decode.greedy import collapse
from ds2.infer.backend import AcousticModel

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


def state_batch_dim(name: str) -> int:
    """The dimension along which the streams of a batch are stacked in the streaming step's state
    tensor `name` (ds2.infer.streaming_step.StreamingStep.state_names): 1 for the recurrent layers'
    hidden states (nn.RNN's (layers, batch, hidden)), 0 for the others."""
    return 1 if re.fullmatch(r"rnn\d+_[hc]", name) else 0


@dataclass
class Step:
    """The input of one streaming step of one stream: its feature frames and its end (NOT_FINAL
    while the utterance goes on)."""

    feats: np.ndarray  # (N, F)
    valid_until: int


def run_steps(model: AcousticModel, steps: list[tuple["StreamingRecognizer", Step]]) -> None:
    """Run the steps of several streams of `model` as few forward passes as their shapes allow
    (one per distinct number of frames and state shapes: Batch Dispatch, DS2 section 7), and
    hand each stream its outputs and new state."""
    groups: dict[tuple, list[tuple[StreamingRecognizer, Step]]] = {}
    for rec, step in steps:
        key = (step.feats.shape, tuple(s.shape for s in rec.state))
        groups.setdefault(key, []).append((rec, step))
    dims = model.state_batch_dims
    for group in groups.values():
        feats = np.stack([step.feats for _, step in group]).astype(np.float32, copy=False)
        valid_until = np.array([step.valid_until for _, step in group], dtype=np.int64)
        state = [np.concatenate([rec.state[i] for rec, _ in group], axis=d) for i, d in enumerate(dims)]
        out, state = model.stream_step(feats, valid_until, state)
        parts = [np.split(s, len(group), axis=d) for s, d in zip(state, dims)]  # views, one per stream
        for b, (rec, _) in enumerate(group):
            rec.apply(out[b], [p[b] for p in parts])


class StreamingRecognizer:
    """Recognise one utterance from audio chunks of any size with a streaming `model` (an
    `AcousticModel` backend, ds2.infer.backend: stream_start, stream_step, state_batch_dims, front_end,
    geometry, tokenizer).

    `accept` and `finish` run the steps themselves. A server that batches many streams uses the
    parts instead: `push` the audio, take the `next_step` (or at the end the `final_step`), run
    the steps of many streams together with `run_steps`, which `apply`s their outputs."""

    def __init__(self, model: AcousticModel):
        self.model = model
        self.geometry: StreamGeometry = model.geometry
        self.features = model.front_end.stream()
        self.state = model.stream_start()
        self.pending = np.zeros((0, model.front_end.num_features), np.float32)
        self.frames_in = 0  # feature frames taken by steps
        self.started = False
        self.dropped = 0  # the row convolution's first outputs, which belong to no frame
        self.log_probs: list[np.ndarray] = []
        self.tokens: list[int] = []  # the best path so far, collapsed (the partial text)
        self.last_best = -1  # the best token of the last output frame
        self.wanted: int | None = None  # output frames of the whole utterance, once it has ended
        self.steps_applied = 0
        self.taken = 0  # output frames handed out by `take`

    # -- one stream on its own ---------------------------------------------------------------
    def accept(self, samples: np.ndarray) -> str:
        """Take the next samples (float, at the model's rate); returns the partial text so far."""
        self.push(samples)
        step = self.next_step()
        if step is not None:
            run_steps(self.model, [(self, step)])
        return self.partial

    def finish(self) -> np.ndarray:
        """End of the utterance: run the last frames (zero-padded as the whole-utterance pass pads)
        and return all (T', V) log-probs, exactly as many as the whole utterance gives."""
        run_steps(self.model, [(self, self.final_step())])
        return self.result()

    # -- the parts ---------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> None:
        """Take the next samples (float, at the model's rate) into the pending feature frames."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.pending = np.concatenate([self.pending, self.features.accept(samples)])

    def next_step(self, quantum: int = 0) -> Step | None:
        """The step to run now: the pending frames in whole multiples of `quantum` frames (0: of
        the model's stride; a multiple of it), or None while they are too few."""
        quantum = quantum or self.geometry.stride
        assert quantum % self.geometry.stride == 0, "a step takes whole strides"
        need = quantum if self.started else -(-self.geometry.first_step_frames() // quantum) * quantum
        if len(self.pending) < need:
            return None
        n = len(self.pending) - len(self.pending) % quantum
        feats, self.pending = self.pending[:n], self.pending[n:]
        self.started = True
        self.frames_in += n
        return Step(feats, NOT_FINAL)

    def final_step(self) -> Step:
        """The last step: the pending frames and zeros after the end, in whole strides, until the
        last frame's look-ahead is in. ValueError for an utterance shorter than one frame."""
        self.pending = np.concatenate([self.pending, self.features.finish()])
        total = self.frames_in + len(self.pending)
        if total == 0:
            raise ValueError("no audio: the utterance is shorter than one feature frame")
        self.wanted = self.geometry.output_frames(total)
        g, s = self.geometry, self.geometry.stride
        zeros = 0
        while True:
            fed = total + zeros
            step = fed - self.frames_in
            if step % s == 0 and step >= s and g.computed_frames(fed) >= self.wanted + g.lookahead \
                    and fed >= g.first_step_frames():
                break
            zeros += 1
        feats = np.concatenate([self.pending, np.zeros((zeros, self.pending.shape[1]), np.float32)])
        self.pending = self.pending[:0]
        self.started = True
        self.frames_in += len(feats)
        return Step(feats, total)

    def apply(self, out: np.ndarray, state) -> None:
        """The outputs (n, V) and new state of this stream's step."""
        self.state = state
        self.steps_applied += 1
        skip = min(len(out), self.geometry.lookahead - self.dropped)
        self.dropped += skip
        out = out[skip:]
        if len(out):
            self.log_probs.append(out)
            best = out.argmax(axis=1)
            self.tokens += collapse(best, self.model.tokenizer.blank_id, previous=self.last_best)
            self.last_best = int(best[-1])

    @property
    def partial(self) -> str:
        """Best-path text of the frames so far."""
        return self.model.tokenizer.decode(self.tokens)

    def take(self) -> np.ndarray:
        """The log-probs (n, V) computed since the last `take` (after the final step: up to the
        utterance's end), no longer kept: a long stream's memory stays bounded (ds2.infer.long_audio)."""
        out = np.concatenate(self.log_probs) if self.log_probs else np.zeros((0, 0), np.float32)
        if self.wanted is not None:
            out = out[: max(0, self.wanted - self.taken)]
        self.log_probs = []
        self.taken += len(out)
        return out

    def result(self) -> np.ndarray:
        """After the final step ran: the utterance's (T', V) log-probs (those not taken by `take`)."""
        assert self.wanted is not None, "result() after the final step"
        out = np.concatenate(self.log_probs) if self.log_probs else np.zeros((0, 0), np.float32)
        return out[: self.wanted - self.taken]
