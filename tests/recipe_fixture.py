"""What the corpus fixtures and recipe tests share: espeak-ng speech as 16 kHz 16-bit audio bytes,
and a reference edit distance (independent of ds2.score's kaldialign) to check the error rates."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLING_RATE = 16000


def espeak(voice: str, speed: int, pitch: int, text: str, format: str) -> bytes:
    """The audio file (16 kHz, mono, 16-bit PCM; `format`: "WAV" or "FLAC") of espeak-ng reading
    `text` in `voice` at `speed` and `pitch`."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                         capture_output=True, check=True).stdout
    audio, sr = sf.read(io.BytesIO(out), dtype="float32")
    g = np.gcd(sr, SAMPLING_RATE)
    audio = resample_poly(audio, SAMPLING_RATE // g, sr // g)
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1, 1), SAMPLING_RATE, subtype="PCM_16", format=format)
    return buf.getvalue()


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance of two token lists."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]
