"""Reading audio for inference: any file libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3 with
libsndfile >= 1.1, ...), or its bytes, as one channel at the model's sampling rate. NumPy,
soundfile and SciPy only (no torch), so the onnxruntime backend can use it."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np


class AudioError(ValueError):
    """Audio that cannot be transcribed; the message is one line naming the input."""


def load_audio(source, sampling_rate: int, name: str | None = None) -> np.ndarray:
    """float32 samples of `source` (a path, or bytes / a binary file object holding a whole file)
    at `sampling_rate`: several channels are averaged (as `ds2 features` mixes them down), another
    rate is resampled (polyphase filter). AudioError (naming `name`, else the path) for a file that
    cannot be read or holds no samples."""
    import soundfile as sf

    name = name or str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise AudioError(f"{name}: no such file" if not Path(source).exists() else f"{name}: not a file")
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile's errors (format, truncation) name no common type
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise AudioError(f"{name}: cannot read audio ({reason})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name}: the file holds no samples")
    samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != sampling_rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), int(sampling_rate))
        samples = resample_poly(samples, sampling_rate // g, int(rate) // g).astype(np.float32)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: the audio holds NaN or infinite samples")
    return np.ascontiguousarray(samples, dtype=np.float32)
