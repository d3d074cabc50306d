"""Pitch features for tonal languages: per frame, how periodic the signal is and at what pitch.

Mandarin tells 妈 mā, 麻 má, 马 mǎ and 骂 mà apart by the pitch contour alone; Kaldi's Mandarin
recipes (AISHELL, THCHS-30) add pitch features to the filterbank for that reason. These are simpler
than Kaldi's (no Viterbi tracking across frames), and so every frame depends only on the samples
around it, which lets a stream compute exactly the frames of the whole utterance:

- the frame's window: PITCH_WINDOW seconds centred on the filterbank frame's centre, the audio
  taken as zero beyond its ends;
- the normalised cross-correlation (NCCF) of the window's first part with itself shifted by every
  lag of a pitch between MIN_F0 and MAX_F0;
- features: the highest NCCF (near 1 where the speech is voiced, near 0 in silence and noise) and
  the log of the pitch at the shortest lag whose NCCF comes within OCTAVE_TOLERANCE of it (a
  multiple of the period correlates almost as well: the shortest such lag is the period), refined
  by a parabola through its neighbours.

NumPy only: the training features (through a Lhotse extractor) and `ds2 transcribe`'s front-end
(`ds2.infer.frontend`) share this code.
"""

from __future__ import annotations

import numpy as np

PITCH_WINDOW = 0.04  # seconds: the lowest pitch's lag and 1.4 periods more to compare (a 1024-point FFT at 16 kHz)
MIN_F0, MAX_F0 = 60.0, 500.0  # Hz
OCTAVE_TOLERANCE = 0.9  # a lag within this share of the best NCCF counts as the period if shorter
NUM_PITCH_FEATURES = 2  # NCCF, log pitch


class PitchTracker:
    """Pitch features of frames every `shift` samples at `sampling_rate` (`NUM_PITCH_FEATURES` each)."""

    def __init__(self, sampling_rate: int, shift: int, fbank_length: int):
        self.sampling_rate = sampling_rate
        self.shift = shift
        self.length = int(round(PITCH_WINDOW * sampling_rate))
        self.min_lag = int(np.floor(sampling_rate / MAX_F0))
        self.max_lag = int(np.ceil(sampling_rate / MIN_F0))
        self.span = self.length - self.max_lag - 1  # samples of the first part, compared at every lag
        if self.span < self.max_lag:
            raise ValueError(f"a pitch window of {self.length} samples is too short for lags up to {self.max_lag}")
        self.fft_length = 1 << (self.length + self.span - 1).bit_length()
        # frame t's filterbank window starts at t * shift - (fbank_length - shift) // 2 (Kaldi without
        # snip_edges); its centre is also the pitch window's
        centre_offset = fbank_length / 2 - (fbank_length - shift) // 2
        self.offset = int(np.floor(centre_offset - self.length / 2))  # pitch window start - t * shift

    def window_range(self, frame: int) -> tuple[int, int]:
        """[start, end) of frame `frame`'s pitch window in samples of the audio (may reach beyond it)."""
        start = frame * self.shift + self.offset
        return start, start + self.length

    def windows(self, samples: np.ndarray, first: int, count: int, base: int = 0) -> np.ndarray:
        """(count, length) float32 windows of frames first.. of the audio, of which `samples` holds the
        part from sample `base` on; zero before sample 0 and after the end of `samples` (the audio's
        end, or samples not needed: a stream asks only for frames whose windows it has)."""
        if count <= 0:
            return np.zeros((0, self.length), np.float32)
        start = first * self.shift + self.offset - base  # of the first window, in `samples`
        end = start + (count - 1) * self.shift + self.length
        before, after = max(0, -start), max(0, end - len(samples))
        part = np.asarray(samples[max(0, start):max(0, min(end, len(samples)))], dtype=np.float32)
        padded = np.concatenate([np.zeros(before, np.float32), part, np.zeros(after, np.float32)])
        return np.lib.stride_tricks.sliding_window_view(padded, self.length)[::self.shift][:count]

    def features(self, windows: np.ndarray) -> np.ndarray:
        """(N, NUM_PITCH_FEATURES) float32 of N windows."""
        from scipy import fft  # float32 transforms: NumPy's are float64 only, twice the time

        x = windows.astype(np.float32)
        x = x - x.mean(axis=1, keepdims=True)
        head = x[:, : self.span]
        spec = fft.rfft(head, n=self.fft_length, axis=1).conj() * fft.rfft(x, n=self.fft_length, axis=1)
        lags = np.arange(self.min_lag - 1, self.max_lag + 2)  # one beyond each end for the parabola
        cross = fft.irfft(spec, n=self.fft_length, axis=1)[:, lags].astype(np.float64)
        squares = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x * x, axis=1)], axis=1)
        energy_head = squares[:, self.span]
        energy_lag = squares[:, lags + self.span] - squares[:, lags]
        nccf = cross / np.sqrt(energy_head[:, None] * energy_lag + 1e-12 * self.span ** 2)
        inner = nccf[:, 1:-1]  # the lags min_lag..max_lag
        best = inner.max(axis=1)
        # the shortest lag within the tolerance that is a local peak: the period, not a multiple of it
        peak = (inner >= nccf[:, :-2]) & (inner >= nccf[:, 2:]) & (inner >= OCTAVE_TOLERANCE * best[:, None])
        k = np.where(peak.any(axis=1), peak.argmax(axis=1), inner.argmax(axis=1))
        rows = np.arange(len(x))
        left, centre, right = nccf[rows, k], nccf[rows, k + 1], nccf[rows, k + 2]
        curvature = left - 2 * centre + right
        shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
        lag = self.min_lag + k + np.clip(shift, -0.5, 0.5)
        log_f0 = np.log(self.sampling_rate / lag)
        return np.stack([np.clip(best, -1.0, 1.0), log_f0], axis=1).astype(np.float32)

    def __call__(self, samples: np.ndarray, num_frames: int) -> np.ndarray:
        """(num_frames, NUM_PITCH_FEATURES) of a whole utterance."""
        return self.features(self.windows(samples, 0, num_frames))
