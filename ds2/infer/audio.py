"""Reading audio for inference: any file libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3 with
libsndfile >= 1.1, ...), or its bytes, as one channel at the model's sampling rate. NumPy,
soundfile and SciPy only (no torch), so the onnxruntime backend can use it."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np


class AudioError(ValueError):
    """Audio that cannot be transcribed; the message is one line naming the input."""


def load_audio(source, sampling_rate: int, name: str | None = None) -> np.ndarray:
    """float32 samples of `source` (a path, or bytes / a binary file object holding a whole file)
    at `sampling_rate`: several channels are averaged (as `ds2 features` mixes them down), another
    rate is resampled (polyphase filter). AudioError (naming `name`, else the path) for a file that
    cannot be read or holds no samples."""
    return AudioReader(source, sampling_rate, name).read()


class AudioReader:
    """An audio input opened for reading: its `duration` (seconds, from the header), then its
    samples at `sampling_rate`, whole (`read`) or in blocks (`blocks`, for a long file: memory
    that does not grow with its length). `source`: a path, bytes, a binary file object, or float
    samples already at `sampling_rate`. AudioError, naming `name` (else the path), for an input
    that cannot be read, holds no samples or holds NaN."""

    def __init__(self, source, sampling_rate: int, name: str | None = None):
        self.name, self.rate = name or str(source), int(sampling_rate)
        self.samples = self.file = None
        if isinstance(source, np.ndarray):
            self.samples = np.asarray(source, dtype=np.float32).reshape(-1)
            self.duration = len(self.samples) / self.rate
            return
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        elif isinstance(source, (str, Path)) and not Path(source).is_file():
            raise AudioError(f"{self.name}: no such file" if not Path(source).exists() else f"{self.name}: not a file")
        import soundfile as sf

        self.file = self._guard(lambda: sf.SoundFile(source))
        self.duration = self.file.frames / self.file.samplerate

    def _guard(self, read):
        try:
            return read()
        except Exception as e:  # noqa: BLE001 - libsndfile's errors (format, truncation) name no common type
            reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            reason = re.sub(r"^Error opening .*?: ", "", reason)  # libsndfile names the path, or a BytesIO's repr
            raise AudioError(f"{self.name}: cannot read audio ({reason})") from None

    def _mono(self, data: np.ndarray) -> np.ndarray:
        samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if not np.all(np.isfinite(samples)):
            raise AudioError(f"{self.name}: the audio holds NaN or infinite samples")
        return samples

    def _empty(self) -> AudioError:
        return AudioError(f"{self.name}: the file holds no samples")

    def read(self) -> np.ndarray:
        """All the samples (float32, one channel, at `sampling_rate`)."""
        if self.samples is not None:
            return self.samples
        with self.file:
            data = self._guard(lambda: self.file.read(dtype="float32", always_2d=True))
        if data.shape[0] == 0:
            raise self._empty()
        samples, rate = self._mono(data), self.file.samplerate
        if rate != self.rate:
            from scipy.signal import resample_poly

            g = math.gcd(int(rate), self.rate)
            samples = resample_poly(samples, self.rate // g, int(rate) // g).astype(np.float32)
        return np.ascontiguousarray(samples, dtype=np.float32)

    def blocks(self, size: int, whole_up_to: float = 0.0):
        """The samples in blocks of about `size`: the file is read a block at a time and resampled
        as it goes (StreamResampler), unless it lasts at most `whole_up_to` seconds: then it is
        read whole first (`read`'s samples, to the last bit)."""
        if self.samples is None and self.duration <= whole_up_to:
            self.samples = self.read()
        if self.samples is not None:
            yield from (self.samples[i:i + size] for i in range(0, len(self.samples), size))
            return
        with self.file:
            resampler = StreamResampler(self.file.samplerate, self.rate)
            read_size = max(1, size * self.file.samplerate // self.rate)
            total = 0
            while True:
                data = self._guard(lambda: self.file.read(read_size, dtype="float32", always_2d=True))
                if data.shape[0] == 0:
                    break
                total += data.shape[0]
                yield resampler.accept(self._mono(data))
            if total == 0:
                raise self._empty()
            yield resampler.finish()


class StreamResampler:
    """Resample a stream that arrives in pieces from `rate_in` to `rate_out`: the same samples as
    scipy's `resample_poly` on the whole signal (its Kaiser-windowed polyphase filter, zero-phase,
    zeros beyond both ends), computed as soon as the input they depend on has arrived.

        r = StreamResampler(48000, 16000)
        out = [r.accept(piece) for piece in pieces] + [r.finish()]
    """

    def __init__(self, rate_in: int, rate_out: int):
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.received = self.produced = 0  # input samples taken, output samples given
        if self.up == self.down:
            return
        from scipy.signal import firwin  # about a second the first time

        half = 10 * max(self.up, self.down)  # resample_poly's filter: 2 * half + 1 taps
        h = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        # phase p's taps h[p], h[p + up], ...: output j uses phase (j * down + half) % up
        self.taps = -(-len(h) // self.up)
        padded = np.zeros(self.taps * self.up)
        padded[: len(h)] = h
        self.phases = padded.reshape(self.taps, self.up).T.astype(np.float64)  # (up, taps)
        self.half = half
        self.buffer = np.zeros(0, np.float64)  # input samples from index `self.start` on
        self.start = 0

    def _outputs(self, count: int) -> np.ndarray:
        """The next `count` output samples, from the buffer (zeros beyond the input received)."""
        j = self.produced + np.arange(count)
        m = j * self.down + self.half
        last = m // self.up  # the newest input index output j uses; then last - 1, ... (taps of them)
        index = last[:, None] - np.arange(self.taps)[None, :] - self.start
        padded = np.concatenate([self.buffer, [0.0]])  # index -1 and those past the end read this zero
        index[(index < 0) | (index >= len(self.buffer))] = len(self.buffer)
        out = (padded[index] * self.phases[m % self.up]).sum(axis=1)
        self.produced += count
        return out.astype(np.float32)

    def _drop_used(self):
        oldest = (self.produced * self.down + self.half) // self.up - self.taps + 1  # the next output's oldest input
        drop = min(max(0, oldest - self.start), len(self.buffer))
        self.buffer, self.start = self.buffer[drop:], self.start + drop

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """The output samples that the input so far determines."""
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.up == self.down:
            self.produced += len(samples)
            return samples.astype(np.float32)
        self.buffer = np.concatenate([self.buffer, samples])
        self.received += len(samples)
        # output j is complete once input index (j * down + half) // up has arrived
        ready = max(0, ((self.received - 1) * self.up - self.half) // self.down + 1) if self.received else 0
        ready = min(ready, self.total(self.received))
        out = self._outputs(max(0, ready - self.produced))
        self._drop_used()
        return out

    def total(self, received: int) -> int:
        """Output samples of `received` input samples in all (resample_poly's length)."""
        return -(-received * self.up // self.down)

    def finish(self) -> np.ndarray:
        """The last output samples (the input's end is followed by zeros)."""
        if self.up == self.down:
            return np.zeros(0, np.float32)
        return self._outputs(max(0, self.total(self.received) - self.produced))
