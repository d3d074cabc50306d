"""Features: DS2's log spectrogram, and the global statistics of one or several training sets."""

import numpy as np
import pytest
import torch
from lhotse import CutSet

from ds2.data.features import FeatureConfig, compute_features, make_extractor


def test_log_spectrogram_has_161_bins_every_10_ms_and_peaks_at_the_tone():
    sr, seconds, tone = 16000, 1.0, 1000.0
    t = np.arange(int(sr * seconds)) / sr
    samples = (0.5 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
    feats = make_extractor(FeatureConfig(kind="spectrogram")).extract(samples, sr)
    assert feats.shape[1] == 161  # a 20 ms window of 320 samples: 320 / 2 + 1 bins
    assert abs(feats.shape[0] - seconds / 0.01) <= 2
    bin_hz = (sr / 2) / 160
    assert int(np.argmax(feats.mean(axis=0))) == round(tone / bin_hz)
    # a log scale: twice the amplitude is 4x the power, log(4) more in the tone's bin
    louder = make_extractor(FeatureConfig(kind="spectrogram")).extract(2 * samples, sr)
    k = round(tone / bin_hz)
    assert np.allclose(louder[:, k] - feats[:, k], np.log(4.0), atol=1e-3)


def test_spectrogram_features_of_a_corpus(tiny_corpus, tmp_path):
    written = compute_features(tiny_corpus / "manifests", tmp_path, "synth", ["dev"],
                               FeatureConfig(kind="spectrogram"), num_jobs=1)
    assert "stats" not in written  # the training set was not among the splits
    cuts = CutSet.from_file(written["dev"])
    for cut in cuts:
        feats = cut.load_features()
        assert feats.shape == (cut.num_frames, 161) and np.isfinite(feats).all()
        assert abs(cut.num_frames - cut.duration / 0.01) <= 2


def test_statistics_from_several_training_sets(tiny_corpus, tmp_path):
    written = compute_features(tiny_corpus / "manifests", tmp_path, "synth", ["dev", "test"],
                               FeatureConfig(kind="fbank"), num_jobs=1, stats_from=["dev", "test"])
    assert written["stats"] == tmp_path / "synth_stats_dev+test.pt"
    stats = torch.load(written["stats"], weights_only=True)
    frames = np.concatenate([c.load_features() for s in ("dev", "test") for c in CutSet.from_file(written[s])])
    assert np.allclose(stats["mean"].numpy(), frames.mean(0), atol=1e-4)
    assert np.allclose(stats["std"].numpy(), frames.std(0), atol=1e-3)


def test_statistics_need_all_their_sets(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="test is not among the splits"):
        compute_features(tiny_corpus / "manifests", tmp_path, "synth", ["dev"], FeatureConfig(), num_jobs=1,
                         stats_from=["dev", "test"])
    with pytest.raises(FileNotFoundError, match="check --prefix"):
        compute_features(tiny_corpus / "manifests", tmp_path, "synth", ["dev_clean"], FeatureConfig(), num_jobs=1)
    assert not list(tmp_path.iterdir())  # nothing computed before the check
