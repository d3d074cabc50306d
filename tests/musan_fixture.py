"""A miniature MUSAN (OpenSLR 17) laid out as the real one: musan/{music,noise,speech}/<source>/ with
<part>-<source>-NNNN.wav files, an ANNOTATIONS and a LICENSE per source folder, a README on top.

The audio is generated noise and tones (16 kHz, 16 bit), long enough to cover an utterance of the
tiny corpus, so one noise cut is mixed into each (Lhotse repeats shorter ones).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
NOISE_SECONDS = 12.0


def noise(rng: np.random.Generator, kind: str, seconds: float) -> np.ndarray:
    """`seconds` of white, brown (low-frequency) or hum noise at 16 kHz, peak 0.3."""
    n = int(seconds * SAMPLE_RATE)
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind == "brown":  # most energy at low frequencies, as traffic or wind
        x = np.cumsum(white)
        x -= np.convolve(x, np.ones(400) / 400, mode="same")
    else:  # a hum with harmonics over some white noise
        t = np.arange(n) / SAMPLE_RATE
        x = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 6)) + 0.2 * white
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def write_musan(root: Path, num_noise: int = 3, num_music: int = 1, seed: int = 0) -> Path:
    """Write `root/musan` with `num_noise` noise WAVs (noise/free-sound) and `num_music` music WAVs
    (music/fma, annotated), and a speech/ part with one WAV; returns the musan folder."""
    rng = np.random.default_rng(seed)
    musan = Path(root) / "musan"
    musan.mkdir(parents=True, exist_ok=True)
    (musan / "README").write_text("MUSAN: a corpus of music, speech and noise (miniature for tests)\n")
    layout = {("noise", "free-sound"): num_noise, ("music", "fma"): num_music, ("speech", "librivox"): 1}
    for (part, source), count in layout.items():
        folder = musan / part / source
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "LICENSE").write_text("CC BY 4.0 (test fixture)\n")
        annotations = []
        for i in range(count):
            name = f"{part}-{source}-{i:04d}"
            kind = ("white", "brown", "hum")[i % 3] if part == "noise" else "hum"
            sf.write(folder / f"{name}.wav", noise(rng, kind, NOISE_SECONDS), SAMPLE_RATE, subtype="PCM_16")
            annotations.append(f"{name} pop N someone" if part == "music" else f"{name} {kind} noise")
        (folder / "ANNOTATIONS").write_text("\n".join(annotations) + "\n")
    return musan


def make_archive(folder: Path, **kwargs) -> Path:
    """`folder/17/musan.tar.gz` of a miniature MUSAN, as OpenSLR serves it (musan/ at its top)."""
    src = write_musan(Path(folder) / "src", **kwargs)
    archive = Path(folder) / "17" / "musan.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="musan")
    return archive
