"""Augmentations of 16 kHz waveforms that make clean synthetic speech less clean and its voices
more varied: resampling (Kaldi's speed perturbation: tempo, pitch and formants together), a
source-filter vocoder (the sound of statistical parametric synthesis), additive noise at an SNR,
room reverberation, and the band of a telephone line. The synthetic corpora apply
them to a share of their training utterances (`ds2.corpora.synth.SynthOptions`); each is a
function of the audio and its parameters, and leaves the audio as it is at strength zero.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, istft, resample_poly, sosfilt, stft

SAMPLING_RATE = 16000


def resample(audio: np.ndarray, factor: float) -> np.ndarray:
    """The audio played `factor` times as fast (resampled by 1/factor, rounded to hundredths): faster,
    higher and with formants moved up as by a shorter vocal tract. `factor` 1: the audio itself."""
    down = round(100 * factor)
    if down == 100:
        return audio
    g = np.gcd(100, down)
    return np.clip(resample_poly(audio, 100 // g, down // g), -1.0, 1.0).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white or brown-ish noise at `snr_db` relative to the speech power."""
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    if rng.random() < 0.5:  # low-frequency noise: a leaky integral of white noise
        noise = np.cumsum(noise) * 0.02
        noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    speech_power = float(np.mean(audio**2)) + 1e-10
    noise_power = float(np.mean(noise**2)) + 1e-10
    noise *= np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return np.clip(audio + noise, -1.0, 1.0)


def random_rir(t60: float, rng: np.random.Generator, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A room impulse response with reverberation time `t60` (seconds): the direct path, a few
    early reflections in the first 50 ms, and a diffuse tail of Gaussian noise decaying by 60 dB
    in `t60`, its high frequencies faster (walls absorb them more). The direct-to-reverberant
    ratio follows from the distance drawn: near sources are drier."""
    n = max(int(t60 * sampling_rate), 2)
    t = np.arange(n) / sampling_rate
    rir = np.zeros(n)
    rir[0] = 1.0
    for _ in range(rng.integers(3, 9)):  # early reflections
        k = int(rng.uniform(0.002, 0.05) * sampling_rate)
        if k < n:
            rir[k] += rng.uniform(-0.6, 0.6)
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / t60)
    tail = np.convolve(tail, [0.5, 0.5], mode="same")  # a gentle low-pass: darker reverberation
    distance = rng.uniform(0.3, 4.0)  # metres: the tail's energy relative to the direct path grows with it
    tail *= np.sqrt(distance / max(np.sum(tail**2), 1e-10)) * 0.5
    tail[: int(0.002 * sampling_rate)] = 0.0
    return (rir + tail).astype(np.float32)


def reverberate(audio: np.ndarray, t60: float, rng: np.random.Generator) -> np.ndarray:
    """The audio in a random room of reverberation time `t60` (`random_rir`), convolved by Lhotse's
    `ReverbWithImpulseResponse` (Kaldi's wav-reverberate: the output aligned with the direct path,
    as long as the input, at the input's power). `t60` 0: the audio itself.

    Lhotse's own random RIR generator needs torchaudio, which has no build for this torch."""
    if t60 <= 0:
        return audio
    from lhotse.augmentation import ReverbWithImpulseResponse

    rir = random_rir(t60, rng)
    reverb = ReverbWithImpulseResponse(rir_generator=lambda nsource=1: rir[None, :] / ReverbWithImpulseResponse.RIR_SCALING_FACTOR)
    out = reverb(audio[None, :].astype(np.float32), SAMPLING_RATE)[0]
    return np.clip(out, -1.0, 1.0).astype(np.float32)


_TELEPHONE_BAND = butter(4, (300, 3400), btype="bandpass", fs=8000, output="sos")


def telephone(audio: np.ndarray) -> np.ndarray:
    """The audio as a narrow-band telephone line carries it: down to 8 kHz, 300-3400 Hz,
    G.711 mu-law at 8 bits, and back to 16 kHz (nothing above 4 kHz)."""
    narrow = sosfilt(_TELEPHONE_BAND, resample_poly(audio, 1, 2))
    mu = 255.0
    peak = max(float(np.max(np.abs(narrow))), 1e-6)
    x = np.clip(narrow / peak, -1, 1)
    code = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    narrow = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu * peak
    return np.clip(resample_poly(narrow, 2, 1), -1.0, 1.0).astype(np.float32)


def vocode(audio: np.ndarray, rng: np.random.Generator, order: int = 30) -> np.ndarray:
    """The audio re-synthesised by a plain source-filter vocoder, as statistical parametric synthesis
    (festival's HTS voices) makes speech: each 5 ms frame's spectral envelope (its first `order`
    cepstral coefficients) excites a pulse train at the frame's F0 where it is voiced, white noise
    where it is not. Timing, pitch and formants stay; the voice's own excitation, its breath and
    the fine structure between the harmonics go: buzzy and smooth. As long as the input, at its power."""
    if len(audio) < 400:
        return audio
    frame, hop, nfft = 400, 80, 512  # 25 ms windows every 5 ms
    # one transform, zero-padded to twice nfft for the autocorrelation; every other bin is the nfft-point one
    _, _, wide = stft(audio, SAMPLING_RATE, nperseg=frame, noverlap=frame - hop, nfft=2 * nfft)
    power = np.abs(wide[::2]) ** 2
    # the envelope: the log spectrum's low quefrencies
    cepstrum = np.fft.irfft(np.log(power + 1e-10) / 2, n=nfft, axis=0)
    cepstrum[order:nfft - order + 1] = 0.0
    envelope = np.exp(np.fft.rfft(cepstrum, axis=0).real)
    # F0 and voicing of each frame: the autocorrelation's peak at lags of 80-400 Hz
    autocorr = np.fft.irfft(np.abs(wide) ** 2, axis=0)
    window = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(frame), 2 * nfft)) ** 2)  # the window's own decay
    autocorr /= np.maximum(window / window[0], 0.05)[:, None]
    lo, hi = SAMPLING_RATE // 400, SAMPLING_RATE // 80
    lag = lo + np.argmax(autocorr[lo:hi], axis=0)
    strength = autocorr[lag, np.arange(autocorr.shape[1])] / (autocorr[0] + 1e-10)
    loud = autocorr[0] > 1e-3 * autocorr[0].max()
    f0 = np.where((strength > 0.35) & loud, SAMPLING_RATE / lag, 0.0)
    # the excitation: unit-power pulses at F0 (phase accumulated sample by sample), noise between
    centres = np.arange(len(f0)) * hop
    f0_samples = np.interp(np.arange(len(audio)), centres, f0)
    f0_samples[np.interp(np.arange(len(audio)), centres, (f0 > 0).astype(float)) < 0.5] = 0.0
    cycles = np.floor(np.cumsum(f0_samples / SAMPLING_RATE))
    pulses = np.diff(cycles, prepend=cycles[0]) > 0
    voiced = f0_samples > 0
    excitation = np.where(voiced, 0.0, rng.standard_normal(len(audio)))
    excitation[pulses] = np.sqrt(SAMPLING_RATE / f0_samples[pulses])
    excitation += voiced * 0.05 * rng.standard_normal(len(audio))  # a little aspiration
    _, _, source = stft(excitation, SAMPLING_RATE, nperseg=frame, noverlap=frame - hop, nfft=nfft)
    _, out = istft(source * envelope, SAMPLING_RATE, nperseg=frame, noverlap=frame - hop, nfft=nfft)
    out = out[:len(audio)]
    out = np.pad(out, (0, len(audio) - len(out)))
    out *= np.sqrt((np.mean(audio**2) + 1e-10) / (np.mean(out**2) + 1e-10))
    return np.clip(out, -1.0, 1.0).astype(np.float32)
