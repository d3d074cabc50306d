"""Pitch features for Mandarin's tones (ds2/data/pitch.py): the tracker on signals whose pitch is
known and on real espeak-ng Mandarin (麻 má rises, 骂 mà falls), the NCCF against its definition
computed directly, the Lhotse extractor `FbankPitch` (`ds2 features --pitch`), its mixing with
noise, and `ds2 transcribe` of a model trained on fbank+pitch features."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Fbank, Recording
from lhotse.features.base import get_extractor_type
from scipy.signal import resample_poly

from ds2.data.features import (FbankPitch, FeatureConfig, compute_cut_features, feature_settings,
                               feature_settings_of_cut, make_extractor, LEGACY_FBANK_WINDOW)
from ds2.data.pitch import MAX_F0, MIN_F0, NUM_PITCH_FEATURES, OCTAVE_TOLERANCE, PitchTracker
from ds2.decode.greedy import collapse
from ds2.infer.acoustic import TorchAcousticModel
from ds2.model import ModelConfig
from random_checkpoint import random_checkpoint

SR = 16000
DS2 = str(Path(sys.executable).with_name("ds2"))
PITCH = FeatureConfig(kind="fbank", pitch=True)  # 80 bins, 10 ms shift, 25 ms window


def tracker() -> PitchTracker:
    """The tracker of the default fbank+pitch features (10 ms shift, 25 ms fbank window, 16 kHz)."""
    return PitchTracker(SR, 160, 320)


def harmonic(f0: float, amps, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A harmonic complex: harmonic k of `f0` at amplitude amps[k-1], each at a random phase."""
    t = np.arange(int(SR * seconds)) / SR
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(amps))
    x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t + p) for k, (a, p) in enumerate(zip(amps, phases)))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def interior(tr: PitchTracker, num_samples: int) -> list[int]:
    """Frames whose pitch window lies wholly inside audio of `num_samples` samples."""
    frames = range(num_samples // tr.shift + 1)
    return [t for t in frames if tr.window_range(t)[0] >= 0 and tr.window_range(t)[1] <= num_samples]


def espeak_16k(text: str, voice: str = "cmn-latn-pinyin+f2") -> np.ndarray:
    out = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    x, rate = sf.read(io.BytesIO(out), dtype="float32")
    assert rate == 22050
    return resample_poly(x, 320, 441).astype(np.float32)


# -- the tracker ----------------------------------------------------------------------------------

@pytest.mark.parametrize("f0", [80.0, 120.0, 200.0, 255.5, 350.0, 480.0])
def test_a_harmonic_complex_gives_its_pitch(f0):
    """Within 0.2 % (an integer lag alone is up to 0.7 % off at 480 Hz: the parabola refines it)
    and near-perfect periodicity, on every frame whose window is inside the signal."""
    tr = tracker()
    x = harmonic(f0, [1.0, 0.6, 0.4, 0.3, 0.2])
    frames = interior(tr, len(x))
    feats = tr(x, len(x) // tr.shift + 1)[frames]
    assert len(frames) > 90
    assert np.abs(feats[:, 1] - np.log(f0)).max() < 0.002, np.exp(feats[:, 1])
    assert feats[:, 0].min() > 0.95


@pytest.mark.parametrize("f0", [110.0, 230.0])
def test_pitch_of_a_harmonic_complex_in_noise(f0):
    """White noise 10 dB below the voice: the pitch within 2 % on every frame (no smoothing across
    frames) and 0.5 % on most, the NCCF lower but clearly voiced."""
    tr = tracker()
    x = harmonic(f0, [1.0, 0.7, 0.5, 0.3])
    noise = np.random.default_rng(1).standard_normal(len(x)).astype(np.float32)
    x = x + noise * np.sqrt(np.mean(x**2) / 10 / np.mean(noise**2))
    feats = tr(x, len(x) // tr.shift + 1)[interior(tr, len(x))]
    error = np.abs(feats[:, 1] - np.log(f0))
    assert error.max() < 0.02 and np.median(error) < 0.005, np.exp(feats[:, 1])
    assert 0.6 < np.median(feats[:, 0]) < 0.98


@pytest.mark.parametrize("f0, amps, what", [
    (150.0, [0.3, 1.0, 0.5, 0.3], "second harmonic above the fundamental"),
    (100.0, [0.0, 1.0, 0.7, 0.5, 0.3], "no fundamental at all"),
    (90.0, [1.0, 0.1, 0.05], "nearly a sine: its period's multiples correlate as well"),
])
def test_no_octave_errors(f0, amps, what):
    """The period, not half of it (the strongest harmonic) nor a multiple of it (which correlate
    as well: the shortest lag within OCTAVE_TOLERANCE wins)."""
    tr = tracker()
    x = harmonic(f0, amps)
    feats = tr(x, len(x) // tr.shift + 1)[interior(tr, len(x))]
    assert np.abs(feats[:, 1] - np.log(f0)).max() < 0.002, (what, np.exp(feats[:, 1]))


def test_noise_and_silence_are_not_voiced():
    tr = tracker()
    n = SR // tr.shift + 1
    rng = np.random.default_rng(0)
    noise = tr((0.1 * rng.standard_normal(SR)).astype(np.float32), n)
    assert noise[:, 0].max() < 0.4 and np.median(noise[:, 0]) < 0.25
    silence = tr(np.zeros(SR, np.float32), n)
    assert np.all(silence[:, 0] == 0) and np.isfinite(silence).all()
    # near-silence (below 16-bit quantisation) counts as silence, whatever its shape
    hum = tr(1e-5 * harmonic(120.0, [1.0, 0.5]), n)
    assert hum[:, 0].max() < 0.05
    # the pitch feature stays in the tracker's range even where there is none
    for feats in (noise, silence, hum):
        assert np.all(feats[:, 1] >= np.log(MIN_F0) - 0.05) and np.all(feats[:, 1] <= np.log(MAX_F0) + 0.05)


def test_features_do_not_depend_on_the_level_of_speech():
    """Speech a tenth as loud has the same features wherever it is speech (a window RMS above 0.01
    once quieter); below that the NCCF is held down on purpose (see the hum above)."""
    tr = tracker()
    x = espeak_16k("ma1 ma2 ma3 ma4")
    n = len(x) // tr.shift + 1
    loud, quiet = tr(x, n), tr(0.1 * x, n)
    speech = np.sqrt((tr.windows(0.1 * x, 0, n).astype(np.float64) ** 2).mean(axis=1)) > 0.01
    voiced = speech & (loud[:, 0] > 0.7)
    assert speech.sum() > 50 and voiced.sum() > 40
    assert np.abs(loud[speech, 0] - quiet[speech, 0]).max() < 1e-3
    assert np.abs(loud[voiced, 1] - quiet[voiced, 1]).max() < 1e-3


def reference_features(window: np.ndarray, tr: PitchTracker) -> tuple[float, float, np.ndarray]:
    """(best NCCF, the lag the tracker must choose before its parabola, NCCF by lag) of one window,
    from the definition: the window's first `span` samples against the `span` samples from each lag."""
    x = window.astype(np.float64) - window.mean(dtype=np.float64)
    head = x[: tr.span]
    lags = np.arange(tr.min_lag - 1, tr.max_lag + 2)
    shifted = [x[lag:lag + tr.span] for lag in lags]
    nccf = np.array([head @ y / math.sqrt((head @ head) * (y @ y) + 1e-12 * tr.span**2) for y in shifted])
    inner = nccf[1:-1]
    best = inner.max()
    peaks = [i for i in range(len(inner)) if inner[i] >= nccf[i] and inner[i] >= nccf[i + 2]
             and inner[i] >= OCTAVE_TOLERANCE * best]
    k = peaks[0] if peaks else int(inner.argmax())
    return best, tr.min_lag + k, nccf


def test_nccf_and_lag_are_those_of_the_definition_on_real_speech(tiny_corpus):
    """On every frame of real speech (English and Mandarin espeak-ng), the NCCF is the largest
    normalised cross-correlation over the lags of 60-500 Hz computed directly, and the pitch is at
    the chosen lag, moved by less than half a sample (the parabola through its neighbours)."""
    tr = tracker()
    english = sorted((tiny_corpus / "audio").glob("*.wav"))[0]
    checked = 0
    for x in (sf.read(str(english), dtype="float32")[0], espeak_16k("麻骂")):
        n = len(x) // tr.shift + 1
        feats, windows = tr(x, n), tr.windows(x, 0, n)
        for t in range(n):
            best, lag, nccf = reference_features(windows[t], tr)
            assert feats[t, 0] == pytest.approx(best, abs=2e-4), t
            # a second peak within float32 rounding of the threshold may be chosen either way
            near = np.abs(nccf[1:-1] - OCTAVE_TOLERANCE * best) < 1e-3
            if best > 0.3 and not near.any():
                assert abs(SR / np.exp(feats[t, 1]) - lag) <= 0.5 + 1e-3, (t, lag, SR / np.exp(feats[t, 1]))
                checked += 1
    assert checked > 150


def test_windows_are_the_audio_around_each_frame_with_zeros_beyond_it():
    """Frame t's window starts at t * shift + offset, centred on the fbank frame (Kaldi's frames
    without snip_edges: the fbank window starts at t * shift - (length - shift) // 2); samples
    before 0 and after the end are zeros; a stream's part of the audio from sample `base` gives
    the same windows for the frames it holds."""
    tr = tracker()
    fbank_centre = 0 * tr.shift - (320 - 160) // 2 + 320 / 2
    assert abs((tr.window_range(0)[0] + tr.window_range(0)[1]) / 2 - fbank_centre) <= 0.5
    assert tr.window_range(0)[1] - tr.window_range(0)[0] == tr.length == 640
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    n = len(x) // tr.shift + 5
    pad = 2000
    padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
    windows = tr.windows(x, 0, n)
    assert windows.shape == (n, tr.length) and windows.dtype == np.float32
    for t in range(n):
        start, end = tr.window_range(t)
        assert np.array_equal(windows[t], padded[start + pad:end + pad]), t
    assert np.array_equal(tr.windows(x, 7, 9), windows[7:16])
    base = tr.window_range(10)[0]
    assert np.array_equal(tr.windows(x[base:], 10, n - 10, base=base), windows[10:])
    # frames whose windows are wholly beyond the audio: silence
    feats = tr(x, n + 10)
    assert np.array_equal(feats[:n], tr(x, n))
    beyond = [t for t in range(n + 10) if tr.window_range(t)[0] >= len(x)]
    assert beyond and np.all(feats[beyond, 0] == 0)
    assert tr.windows(x, 0, 0).shape == (0, tr.length) and tr(x, 0).shape == (0, NUM_PITCH_FEATURES)


def voiced_log_f0(x: np.ndarray, tr: PitchTracker) -> np.ndarray:
    """Log F0 of the voiced frames in order: NCCF above 0.7 and a window of at least a tenth of
    the loudest window's RMS (espeak-ng's quiet echo after the syllable is left out)."""
    n = len(x) // tr.shift + 1
    feats, windows = tr(x, n), tr.windows(x, 0, n)
    rms = np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1))
    voiced = (feats[:, 0] > 0.7) & (rms > 0.1 * rms.max())
    return feats[voiced, 1]


@pytest.mark.parametrize("syllable, tone", [("麻", 2), ("骂", 4)])
def test_mandarin_tones_rise_and_fall(syllable, tone):
    """espeak-ng's Mandarin voice reads 麻 má (tone 2) with a rising pitch and 骂 mà (tone 4) with a
    falling one: the voiced frames' last third is at least 7 % above (below) the first third."""
    f0 = voiced_log_f0(espeak_16k(syllable), tracker())
    assert len(f0) >= 15
    assert np.all((np.exp(f0) > 100) & (np.exp(f0) < 300))  # the female voice's range, no octave jumps
    third = len(f0) // 3
    change = f0[-third:].mean() - f0[:third].mean()
    assert (change > 0.07) if tone == 2 else (change < -0.07), np.round(np.exp(f0)).tolist()


# -- the Lhotse extractor ---------------------------------------------------------------------------

def test_fbank_pitch_is_lhotses_fbank_then_the_pitch_features(tiny_corpus):
    extractor = make_extractor(PITCH)
    assert isinstance(extractor, FbankPitch) and get_extractor_type("ds2-fbank-pitch") is FbankPitch
    assert extractor.feature_dim(SR) == 82
    plain = make_extractor(FeatureConfig(kind="fbank"))
    for path in sorted((tiny_corpus / "audio").glob("*.wav"))[:2]:
        x, _ = sf.read(str(path), dtype="float32")
        feats = extractor.extract(x, SR)
        fbank = plain.extract(x, SR)
        assert feats.shape == (len(fbank), 82) and feats.dtype == np.float32
        assert np.array_equal(feats[:, :80], fbank)
        assert np.array_equal(feats[:, 80:], tracker()(x, len(fbank)))
        as_tensor = extractor.extract(torch.from_numpy(x), SR)  # Lhotse may hand over a tensor
        assert isinstance(as_tensor, torch.Tensor) and torch.allclose(as_tensor, torch.from_numpy(feats), atol=1e-5)
    with pytest.raises(ValueError, match="pitch features come with fbank features only, not spectrogram"):
        make_extractor(FeatureConfig(kind="spectrogram", pitch=True))


def test_energy_and_scaling_act_on_the_bins_only():
    rng = np.random.default_rng(0)
    feats = rng.normal(2.0, 3.0, (50, 82)).astype(np.float32)
    assert FbankPitch.compute_energy(feats) == Fbank.compute_energy(feats[:, :80])
    scaled = FbankPitch.scale(feats, 0.25)
    assert np.allclose(scaled[:, :80], feats[:, :80] + np.log(0.25)) and np.array_equal(scaled[:, 80:], feats[:, 80:])
    other = rng.normal(0.0, 3.0, (50, 82)).astype(np.float32)
    mixed = FbankPitch.mix(feats, other, 0.5)
    assert np.allclose(mixed[:, :80], Fbank.mix(feats[:, :80], other[:, :80], 0.5))
    assert np.array_equal(mixed[:, 80:], feats[:, 80:])


def test_noise_mixed_by_lhotse_keeps_the_speechs_pitch(tiny_corpus, tmp_path):
    """A MixedCut of speech and noise (what CutMix, train.noise_cuts, makes) loads with the mixed
    audio's filterbank (as Lhotse's Fbank mixes it, at the SNR of the bins' energies) and the
    speech's own pitch features, to the bit."""
    from musan_fixture import noise

    extractor = make_extractor(PITCH)
    speech = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz")[0].drop_features()
    audio = speech.load_audio()[0]
    wav = tmp_path / "noise.wav"
    sf.write(wav, noise(np.random.default_rng(1), "white", len(audio) / SR), SR, subtype="FLOAT")
    cuts = compute_cut_features(CutSet.from_cuts([speech, Recording.from_file(wav).to_cut()]), extractor,
                                tmp_path / "feats", 1, "fbank+pitch")
    speech, noise_cut = cuts[speech.id], next(c for c in cuts if c.id != speech.id)
    assert speech.features.type == noise_cut.features.type == "ds2-fbank-pitch"
    clean, noisy = speech.load_features(), noise_cut.load_features()
    mixed = speech.mix(noise_cut, snr=10, preserve_id="left").load_features()
    assert mixed.shape == clean.shape == (speech.num_frames, 82)
    assert np.array_equal(mixed[:, 80:], clean[:, 80:])
    gain = Fbank.compute_energy(clean[:, :80]) / Fbank.compute_energy(noisy[:, :80]) / 10
    assert np.allclose(mixed[:, :80], Fbank.mix(clean[:, :80], noisy[:, :80], gain), atol=1e-4)
    truth = extractor.extract(audio + math.sqrt(gain) * noise_cut.load_audio()[0], SR)
    error, noise_effect = np.abs(mixed[:, :80] - truth[:, :80]).mean(), np.abs(clean[:, :80] - truth[:, :80]).mean()
    assert error < 0.5 and noise_effect > 5 * error, (error, noise_effect)
    # the noise would have changed the pitch features: they are the speech's on purpose
    assert np.abs(truth[:, 80] - clean[:, 80]).mean() > 0.02


# -- ds2 features --pitch, and a model of its features ---------------------------------------------

def ds2(*args, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([DS2, *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def pitch_features(tiny_corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`ds2 features --pitch` of the tiny corpus's dev and test sets (statistics from dev), in two processes."""
    out_dir = tmp_path_factory.mktemp("pitch") / "fbank_pitch"
    proc = ds2("features", tiny_corpus / "manifests", out_dir, "--prefix", "synth", "--pitch", "--splits", "dev,test",
               "--stats-from", "dev", "--num-jobs", "2")
    return out_dir, proc


def test_features_cli_writes_fbank_and_pitch(tiny_corpus, pitch_features):
    out_dir, proc = pitch_features
    assert f"stats: {out_dir / 'synth_stats_dev.pt'}" in proc.stdout
    plain = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz").to_eager()  # fbank without pitch
    stats = torch.load(out_dir / "synth_stats_dev.pt", weights_only=True)
    assert stats["features"] == feature_settings(PITCH, SR)
    assert stats["features"]["pitch"] is True and stats["features"]["num_mel_bins"] == 80
    frames = []
    for split in ("dev", "test"):
        cuts = CutSet.from_file(out_dir / f"synth_cuts_{split}.jsonl.gz").to_eager()
        assert len(cuts) == 8
        for cut in cuts:
            assert cut.features.type == "ds2-fbank-pitch" and cut.num_features == 82
            # a manifest does not hold the window: a stats file without settings was of 20 ms ones
            assert feature_settings_of_cut(cut) == {**stats["features"], "window": LEGACY_FBANK_WINDOW}
            feats = cut.load_features()
            assert feats.shape == (cut.num_frames, 82)
            audio = cut.load_audio()[0]
            # stored with Lilcom: within its quantisation of the features computed here
            assert np.abs(feats[:, 80:] - tracker()(audio, cut.num_frames)).max() < 0.05
            if split == "dev":
                frames.append(feats)
                assert np.abs(feats[:, :80] - plain[cut.id].load_features()).max() < 0.1
    frames = np.concatenate(frames)
    assert stats["mean"].shape == stats["std"].shape == (82,)
    assert np.allclose(stats["mean"].numpy(), frames.mean(0), atol=1e-4)
    assert np.allclose(stats["std"].numpy(), frames.std(0), atol=1e-3)
    assert 0.2 < stats["mean"][80] < 0.95 and math.log(MIN_F0) < stats["mean"][81] < math.log(MAX_F0)


def test_pitch_with_a_spectrogram_is_a_one_line_error(tiny_corpus, tmp_path):
    out = ds2("features", tiny_corpus / "manifests", tmp_path / "out", "--prefix", "synth", "--pitch", "--kind",
              "spectrogram", "--splits", "dev", "--stats-from", "dev", ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == ["Error: --pitch comes with --kind fbank only"]
    assert not (tmp_path / "out").exists()


def test_a_model_of_pitch_features_transcribes_real_audio(tiny_corpus, tmp_path):
    """`ds2 transcribe` (torch, whole and streaming; and an ONNX export) of a checkpoint trained on
    fbank+pitch features computes 82 features, the pitch features included, and gives the text of
    the model's greedy path on them; the model does read the pitch columns."""
    cfg = ModelConfig(feature_norm="global", bidirectional=False, conv_channels=[8], conv_kernels=[[5, 11]],
                      conv_strides=[[2, 2]], rnn_layers=2, rnn_hidden=48, lookahead=3)
    ckpt = random_checkpoint(tmp_path / "pitch.pt", cfg, seed=5, features=PITCH)
    wav = sorted((tiny_corpus / "audio").glob("*.wav"), key=lambda p: sf.info(str(p)).frames)[-1]
    audio, _ = sf.read(str(wav), dtype="float32")

    model = TorchAcousticModel(ckpt)
    assert model.front_end.num_features == 82 and model.model.num_features == 82
    feats = model.front_end(audio)
    assert feats.shape[1] == 82
    assert np.array_equal(feats[:, 80:], tracker()(audio, len(feats)))
    log_probs = model.log_probs([feats])[0]
    text = model.tokenizer.decode(collapse(log_probs.argmax(1), model.tokenizer.blank_id))
    assert len(text) >= 3  # something to compare
    no_pitch = feats.copy()
    no_pitch[:, 80:] = 0
    assert np.abs(model.log_probs([no_pitch])[0] - log_probs).max() > 1e-2

    whole = ds2("transcribe", ckpt, wav, "--format", "json")
    result = json.loads(whole.stdout)
    assert result["text"] == text
    streamed = ds2("transcribe", ckpt, wav, "--format", "json", "--streaming", "--chunk-ms", "130")
    assert json.loads(streamed.stdout) == result
    ds2("export", ckpt, "--format", "onnx", "--output-dir", tmp_path / "onnx")
    manifest = json.loads((tmp_path / "onnx/ds2_model.json").read_text())
    assert manifest["features"]["pitch"] is True and manifest["num_features"] == 82
    onnx = ds2("transcribe", tmp_path / "onnx", wav, "--format", "json", "--backend", "onnxruntime")
    assert json.loads(onnx.stdout)["text"] == text
