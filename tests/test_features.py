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


def test_speed_perturbation_adds_copies_of_the_training_set_only(tiny_corpus, tmp_path):
    """--speed-perturb 0.9,1.1: train gets two perturbed copies of every cut (features of their own,
    in the statistics); the original cuts' features and dev are what they are without it."""
    from lhotse import RecordingSet, SupervisionSet

    manifests, plain = tmp_path / "manifests", {}  # a part of the tiny corpus: its features are quicker
    manifests.mkdir()
    for split, count in (("train", 8), ("dev", 3)):
        recs = RecordingSet.from_file(tiny_corpus / "manifests" / f"synth_recordings_{split}.jsonl.gz")
        recs = recs.subset(first=count)
        ids = set(recs.ids)
        recs.to_file(manifests / f"synth_recordings_{split}.jsonl.gz")
        sups = SupervisionSet.from_file(tiny_corpus / "manifests" / f"synth_supervisions_{split}.jsonl.gz")
        SupervisionSet.from_segments(s for s in sups if s.recording_id in ids).to_file(
            manifests / f"synth_supervisions_{split}.jsonl.gz")
        without = CutSet.from_file(tiny_corpus / "fbank" / f"synth_cuts_{split}.jsonl.gz")  # computed without it
        plain[split] = CutSet.from_cuts(c for c in without if c.recording_id in ids)
        assert len(plain[split]) == count
    written = compute_features(manifests, tmp_path / "fbank", "synth", ["train", "dev"], FeatureConfig(), num_jobs=1,
                               speed_perturb=[0.9, 1.1])
    train = CutSet.from_file(written["train"]).to_eager()
    assert len(train) == 3 * len(plain["train"])
    for cut in plain["train"]:
        assert np.array_equal(train[cut.id].load_features(), cut.load_features())
        for factor in (0.9, 1.1):
            fast = train[f"{cut.id}_sp{factor}"]
            assert abs(fast.duration - cut.duration / factor) < 1e-3  # up to a sample
            assert abs(fast.num_frames - fast.duration / 0.01) <= 2  # features of the perturbed audio
            (sup,) = fast.supervisions
            assert sup.text == cut.supervisions[0].text and abs(sup.duration - fast.duration) < 1e-3
    dev = CutSet.from_file(written["dev"]).to_eager()
    assert sorted(dev.ids) == sorted(plain["dev"].ids)
    for cut in plain["dev"]:
        assert np.array_equal(dev[cut.id].load_features(), cut.load_features())
    frames = np.concatenate([c.load_features() for c in train])
    stats = torch.load(written["stats"], weights_only=True)
    assert np.allclose(stats["mean"].numpy(), frames.mean(0), atol=1e-4)


def test_speed_factors_are_checked_before_any_work(tiny_corpus, tmp_path):
    from click.testing import CliRunner

    from ds2.cli import main

    for factors, why in (("0.9,1", "positive numbers other than 1"), ("0.9,0.9", "each once"),
                         ("-1.1", "positive numbers"), ("fast", "not a list of numbers")):
        out = CliRunner().invoke(main, ["features", str(tiny_corpus / "manifests"), str(tmp_path / "f"), "--prefix",
                                        "synth", "--speed-perturb", factors])
        assert out.exit_code == 1 and why in out.output and len(out.stderr.strip().splitlines()) == 1, out.output
    with pytest.raises(ValueError, match="not for recordings without supervisions"):
        compute_features(tiny_corpus / "manifests", tmp_path / "f", "synth", ["dev"], FeatureConfig(),
                         speed_perturb=[1.1], recordings_only=True)
    assert not (tmp_path / "f").exists()
