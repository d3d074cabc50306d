"""A trained model's features computed from audio in NumPy, whole or as it streams in.

The same numbers as the Lhotse extractors `ds2 features` trained on (`Fbank`, and
`LogSpectrogram` built on Lhotse's `Spectrogram`; Kaldi's framing with `snip_edges=False`):
each frame's samples lose their mean, get pre-emphasis and a Povey window, then the power
spectrum, a mel filterbank (fbank) and a log. NumPy only, so `ds2 transcribe --backend
onnxruntime` runs without torch; a test holds it to Lhotse's extractors.

Streaming gives exactly the frames of the whole utterance: a frame is computed once all its
samples are in, and the reflected samples Kaldi pads at both ends are taken from the first
samples, and (at `finish`) the last ones. With pitch features (`ds2.data.pitch`, the same code as
training's), a frame waits until its longer pitch window is in too.
"""

from __future__ import annotations

import math

import numpy as np

from ds2.data.pitch import NUM_PITCH_FEATURES, PitchTracker

FBANK_EPS = float(np.finfo(np.float32).eps)  # Lhotse's floor of the mel energies
SPECTROGRAM_FLOOR = 1e-10  # ds2.data.features.LogSpectrogram's floor of the power
PREEMPHASIS = 0.97
LOW_FREQ, HIGH_FREQ = 20.0, -400.0  # Lhotse FbankConfig's defaults (high: 400 Hz below Nyquist)


def _mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_banks(num_bins: int, fft_length: int, sampling_rate: int, low_freq: float = LOW_FREQ,
              high_freq: float = HIGH_FREQ) -> np.ndarray:
    """(fft_length // 2 + 1, num_bins) triangular mel filters, Kaldi's (and Lhotse's) formula; the
    Nyquist bin gets no weight."""
    nyquist = 0.5 * sampling_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = _mel(sampling_rate / fft_length * np.arange(fft_length // 2, dtype=np.float64))[None, :]
    banks = np.maximum(0.0, np.minimum((mel - left) / (center - left), (right - mel) / (right - center)))
    return np.pad(banks, ((0, 0), (0, 1))).T.astype(np.float32)


def pad_batch(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, F) float32 zero-padded batch of (T_i, F) features, and their (B,) int64 lengths:
    the acoustic models' input, whatever the backend."""
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    batch = np.zeros((len(feats), int(lengths.max()), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        batch[i, : len(f)] = f
    return batch, lengths


class FeatureFrontEnd:
    """Features of 1-D float audio at `sampling_rate`, as set in a checkpoint's `features`
    (`ds2.data.features.feature_settings`): kind, num_mel_bins, frame_shift, window, sampling_rate,
    and pitch (absent in checkpoints made before pitch features: none)."""

    def __init__(self, settings: dict):
        self.kind = settings["kind"]
        if self.kind not in ("fbank", "spectrogram"):
            raise ValueError(f"unknown feature kind {self.kind!r}")
        self.sampling_rate = int(settings["sampling_rate"])
        self.shift = int(round(settings["frame_shift"] * self.sampling_rate))  # samples
        self.length = int(math.floor(settings["window"] * self.sampling_rate))
        self.frame_shift = self.shift / self.sampling_rate  # seconds
        # fbank rounds the FFT to a power of two (Lhotse's default); the DS2 spectrogram does not
        self.fft_length = 1 << (self.length - 1).bit_length() if self.kind == "fbank" else self.length
        self.window = (np.hanning(self.length) ** 0.85).astype(np.float64)  # Povey's window
        self.banks = (mel_banks(settings["num_mel_bins"], self.fft_length, self.sampling_rate)
                      if self.kind == "fbank" else None)
        self.num_bins = settings["num_mel_bins"] if self.kind == "fbank" else self.fft_length // 2 + 1
        self.num_features = self.num_bins
        self.pad_left = (self.length - self.shift) // 2  # reflected samples before the first frame
        self.pitch = PitchTracker(self.sampling_rate, self.shift, self.length) if settings.get("pitch") else None
        if self.pitch is not None:
            self.num_features += NUM_PITCH_FEATURES

    def num_frames(self, num_samples: int) -> int:
        """Frames of `num_samples` samples (Kaldi without snip_edges: one per shift, rounded)."""
        return (num_samples + self.shift // 2) // self.shift

    def min_samples(self) -> int:
        """The shortest audio with one complete frame of real samples."""
        return self.length

    def frames(self, windows: np.ndarray) -> np.ndarray:
        """Filterbank or spectrogram features (N, bins) float32 of N windows (N, length) of samples."""
        x = windows.astype(np.float64)
        x = x - x.mean(axis=1, keepdims=True)
        x = np.concatenate([x[:, :1] - PREEMPHASIS * x[:, :1], x[:, 1:] - PREEMPHASIS * x[:, :-1]], axis=1)
        power = np.abs(np.fft.rfft(x * self.window, n=self.fft_length, axis=1)) ** 2
        if self.banks is None:
            return np.log(np.maximum(power, SPECTROGRAM_FLOOR)).astype(np.float32)
        energies = (power.astype(np.float32) @ self.banks)
        return np.log(np.maximum(energies, FBANK_EPS)).astype(np.float32)

    def _windows(self, padded: np.ndarray, first: int, count: int) -> np.ndarray:
        """`count` windows of `padded` from the one starting at padded index first * shift."""
        starts = (first + np.arange(count)) * self.shift
        return padded[starts[:, None] + np.arange(self.length)[None, :]]

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Features (T, num_features) of a whole utterance (at least `min_samples` samples)."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1 or len(samples) < self.min_samples():
            raise ValueError(f"need 1-D audio of at least {self.min_samples()} samples, not shape {samples.shape}")
        n = self.num_frames(len(samples))
        pad_right = (n - 1) * self.shift + self.length - len(samples) - self.pad_left
        padded = np.concatenate([samples[: self.pad_left][::-1], samples,
                                 samples[len(samples) - max(pad_right, 0):][::-1]])
        feats = self.frames(self._windows(padded, 0, n))
        if self.pitch is None:
            return feats
        return np.concatenate([feats, self.pitch(samples, n)], axis=1)

    def stream(self) -> "StreamingFeatures":
        return StreamingFeatures(self)


class StreamingFeatures:
    """Features of audio that arrives in pieces: `accept` returns the frames completed so far,
    `finish` the rest; together exactly `FeatureFrontEnd(samples)` of all of it."""

    def __init__(self, front_end: FeatureFrontEnd):
        self.fe = front_end
        self.received = 0  # samples so far
        self.emitted = 0  # filterbank (or spectrogram) frames so far
        self.head = np.zeros(0, np.float32)  # the first samples, until pad_left of them are in
        self.buffer = np.zeros(0, np.float32)  # padded signal from the next frame's first sample
        self.started = False
        # with pitch: frames whose bins are computed but whose pitch window is not all in yet, the
        # samples from the next such frame's pitch window on (from sample raw_base), frames out
        self.pending = np.zeros((0, front_end.num_bins), np.float32)
        self.raw = np.zeros(0, np.float32)
        self.raw_base = 0
        self.out = 0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.fe.pitch is not None:
            self.raw = np.concatenate([self.raw, samples])
        return self._with_pitch(self._accept_bins(samples), final=False)

    def finish(self) -> np.ndarray:
        """The frames left at the end of the audio (the last ones see reflected samples)."""
        if not self.started:  # shorter than the left padding: the whole-utterance path decides
            return self.fe(self.head) if self.head is not None and len(self.head) else self._with_pitch(
                self._emit(0), final=True)
        return self._with_pitch(self._finish_bins(), final=True)

    def _with_pitch(self, bins: np.ndarray, final: bool) -> np.ndarray:
        """`bins` (the frames completed now) with their pitch features, as far as their pitch windows
        are in (all of them at the end of the audio, zeros beyond it); the others wait."""
        pitch = self.fe.pitch
        if pitch is None:
            return bins
        self.pending = np.concatenate([self.pending, bins])
        ready = len(self.pending)
        if not final:  # frame t's pitch window ends at t * shift + offset + length
            complete = (self.received - pitch.offset - pitch.length) // pitch.shift + 1
            ready = int(np.clip(complete - self.out, 0, len(self.pending)))
        feats = pitch.features(pitch.windows(self.raw, self.out, ready, base=self.raw_base))
        out, self.pending = np.concatenate([self.pending[:ready], feats], axis=1), self.pending[ready:]
        self.out += ready
        drop = max(0, min(self.out * pitch.shift + pitch.offset - self.raw_base, len(self.raw)))
        self.raw, self.raw_base = self.raw[drop:], self.raw_base + drop
        return out

    def _accept_bins(self, samples: np.ndarray) -> np.ndarray:
        self.received += len(samples)
        if not self.started:
            self.head = np.concatenate([self.head, samples])
            if len(self.head) < max(self.fe.pad_left, 1):
                return np.zeros((0, self.fe.num_bins), np.float32)
            samples, self.head = np.concatenate([self.head[: self.fe.pad_left][::-1], self.head]), None
            self.started = True
        self.buffer = np.concatenate([self.buffer, samples])
        count = max(0, (len(self.buffer) - self.fe.length) // self.fe.shift + 1)
        return self._emit(count)

    def _emit(self, count: int) -> np.ndarray:
        if count <= 0:
            return np.zeros((0, self.fe.num_bins), np.float32)
        out = self.fe.frames(self.fe._windows(self.buffer, 0, count))
        self.buffer = self.buffer[count * self.fe.shift:]
        self.emitted += count
        return out

    def _finish_bins(self) -> np.ndarray:
        total = self.fe.num_frames(self.received)
        # the padded signal ends (total - 1) * shift + length samples in; reflect the last samples
        end = (total - 1) * self.fe.shift + self.fe.length
        have = self.fe.pad_left + self.received
        tail = self._last_samples(end - have)
        self.buffer = np.concatenate([self.buffer, tail])
        return self._emit(total - self.emitted)

    def _last_samples(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.zeros(0, np.float32)
        # the buffer ends with the last real samples (it holds at least length - shift of them)
        return self.buffer[len(self.buffer) - n:][::-1]
