"""Noise mixed into training batches (train.noise_cuts: `NoiseMix`, Lhotse's CutMix of precomputed
features), with the noise of a miniature MUSAN (tests/musan_fixture.py) and the tiny espeak-ng corpus."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Recording
from musan_fixture import NOISE_SECONDS, noise, write_musan

from ds2.config import TrainConfig, resolve_config
from ds2.corpora.musan import prepare_musan
from ds2.data.augment import NoiseMix, training_cut_transforms
from ds2.data.dataset import AsrDataset
from ds2.data.features import FeatureConfig, compute_cut_features, compute_features, make_extractor
from ds2.text import CharTokenizer

@pytest.fixture(scope="module")
def musan_noise(tmp_path_factory) -> Path:
    """A folder with the miniature MUSAN's manifests/ and fbank/musan_cuts_noise.jsonl.gz (3 x 12 s)."""
    root = tmp_path_factory.mktemp("musan")
    prepare_musan(write_musan(root), root / "manifests", ["noise"])
    compute_features(root / "manifests", root / "fbank", "musan", ["noise"], FeatureConfig(), num_jobs=1,
                     recordings_only=True)
    return root


def train_cuts(tiny_corpus) -> CutSet:
    return CutSet.from_file(tiny_corpus / "fbank" / "synth_cuts_train.jsonl.gz").to_eager()


def batch(cuts: CutSet, *transforms, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return AsrDataset(CharTokenizer(), cut_transforms=transforms)[cuts]


def test_noise_prob_0_leaves_the_batch_as_it_is(tiny_corpus, musan_noise):
    cuts = train_cuts(tiny_corpus)
    noise_cuts = CutSet.from_file(musan_noise / "fbank" / "musan_cuts_noise.jsonl.gz")
    clean, same = batch(cuts), batch(cuts, NoiseMix(noise_cuts, 0.0, (10, 20)))
    assert same["cut_ids"] == clean["cut_ids"] == list(cuts.ids)
    for key in ("features", "feature_lens", "targets", "target_lens"):
        assert torch.equal(same[key], clean[key]), key


def test_noise_prob_1_mixes_every_cut_at_an_snr_in_range(tiny_corpus, musan_noise):
    """The SNR is measured on the features: the energy (summed exp of the log-mel values) the
    mix adds, against the speech's."""
    cuts = train_cuts(tiny_corpus)
    assert max(c.duration for c in cuts) < NOISE_SECONDS  # one noise cut covers each utterance
    noise_cuts = CutSet.from_file(musan_noise / "fbank" / "musan_cuts_noise.jsonl.gz")
    clean, noisy = batch(cuts), batch(cuts, NoiseMix(noise_cuts, 1.0, (10, 20)))
    assert noisy["cut_ids"] == clean["cut_ids"]
    for key in ("feature_lens", "targets", "target_lens"):  # the lengths CTC needs are the speech's
        assert torch.equal(noisy[key], clean[key]), key
    snrs = []
    for i, frames in enumerate(clean["feature_lens"].tolist()):
        speech = clean["features"][i, :frames].double().exp().sum()
        added = noisy["features"][i, :frames].double().exp().sum() - speech
        snrs.append(10 * math.log10(speech / added))
    assert all(9.9 <= s <= 20.1 for s in snrs), snrs
    assert max(snrs) - min(snrs) > 5  # drawn per utterance from the whole range
    assert torch.equal(batch(cuts, NoiseMix(noise_cuts, 1.0, (10, 20)))["features"], noisy["features"])
    other = batch(cuts, NoiseMix(noise_cuts, 1.0, (10, 20)), seed=1)["features"]  # the draws follow torch's seed
    assert not torch.equal(other, noisy["features"])


@pytest.mark.parametrize("kind", ["fbank", "spectrogram"])
def test_mixed_features_are_those_of_the_mixed_audio(tiny_corpus, tmp_path, kind):
    """Lhotse mixes the stored features of speech and noise (MixedCut) in the power domain: close
    to the features of the audio mixed at the same SNR, far from the clean speech's. A log
    spectrogram mixed as Lhotse's Spectrogram mixes (values added) fails this."""
    extractor = make_extractor(FeatureConfig(kind=kind))
    speech = train_cuts(tiny_corpus)[0].drop_features()
    audio = speech.load_audio()[0]
    wav = tmp_path / "noise.wav"
    sf.write(wav, noise(np.random.default_rng(1), "brown", len(audio) / 16000), 16000, subtype="FLOAT")
    noise_cut = Recording.from_file(wav).to_cut()
    cuts = compute_cut_features(CutSet.from_cuts([speech, noise_cut]), extractor, tmp_path / "feats", 1, kind)
    speech, noise_cut = cuts[speech.id], cuts[noise_cut.id]
    mixed = speech.mix(noise_cut, snr=10, preserve_id="left").load_features()
    clean, noise_feats = speech.load_features(), noise_cut.load_features()
    gain = extractor.compute_energy(clean) / extractor.compute_energy(noise_feats) / 10  # energy, 10 dB below
    truth = extractor.extract(audio + math.sqrt(gain) * noise_cut.load_audio()[0], 16000)
    assert mixed.shape == truth.shape == clean.shape
    error, noise_effect = np.abs(mixed - truth).mean(), np.abs(clean - truth).mean()
    # exact but for the cross terms of speech and noise, which average out over a band (fbank) more than per bin
    assert error < 0.5 and noise_effect > 5 * error, (error, noise_effect)


def test_noise_of_another_kind_or_missing_is_a_one_line_error(tiny_corpus, musan_noise, tmp_path):
    like = train_cuts(tiny_corpus)[0]  # fbank, 80 dims
    spectrogram = compute_features(musan_noise / "manifests", tmp_path, "musan", ["noise"],
                                   FeatureConfig(kind="spectrogram"), num_jobs=1, recordings_only=True)["noise"]
    with pytest.raises(ValueError) as e:
        training_cut_transforms(TrainConfig(noise_cuts=f"{musan_noise}/fbank/musan_cuts_noise.jsonl.gz,{spectrogram}"),
                                like)
    assert str(e.value) == (f"train.noise_cuts: {spectrogram} holds log-spectrogram (161 dims, 10 ms shift, 16000 Hz) "
                            "features, the training cuts kaldi-fbank (80 dims, 10 ms shift, 16000 Hz): compute the "
                            "noise features with the same --kind and --num-mel-bins")
    with pytest.raises(ValueError, match=f"train.noise_cuts: no file {tmp_path}/none.jsonl.gz"):
        training_cut_transforms(TrainConfig(noise_cuts=f" {tmp_path}/none.jsonl.gz "), like)
    assert training_cut_transforms(TrainConfig(noise_cuts=" , "), like) == []


@pytest.mark.parametrize("override, message", [
    ("train.noise_prob=1.5", "train.noise_prob must be between 0 and 1, not 1.5"),
    ("train.noise_snr=[20, 10]", "train.noise_snr must be [low, high] in dB with low <= high"),
    ("train.noise_snr=[10]", "train.noise_snr must be [low, high]"),
    ("train.noise_snr=[10, .nan]", "train.noise_snr must be [low, high]"),
    ("train.noise_snr=15", "train.noise_snr must be a list"),
])
def test_noise_options_are_checked_with_one_line_errors(override, message):
    with pytest.raises(ValueError) as e:
        resolve_config(None, [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_noise_options_from_the_command_line():
    cfg = resolve_config(None, ["train.noise_cuts=a.jsonl.gz,b.jsonl.gz", "train.noise_snr=[5, 15]",
                                "train.noise_prob=1"]).train
    assert (cfg.noise_cuts, cfg.noise_snr, cfg.noise_prob) == ("a.jsonl.gz,b.jsonl.gz", [5.0, 15.0], 1.0)
    assert TrainConfig().noise_cuts == ""  # off unless asked for


def test_the_trainer_mixes_noise_into_training_batches(tiny_corpus, lang, musan_noise, tmp_path):
    """`ds2 train` builds its training dataset with the noise of train.noise_cuts (the recipe test
    trains with it end to end); a missing file stops it before the pass over the training cuts."""
    from ds2.train.trainer import TrainData, Trainer, TrainingStopped

    noise_cuts = musan_noise / "fbank" / "musan_cuts_noise.jsonl.gz"
    cfg = resolve_config(None, ["model.conv_channels=[4]", "model.conv_kernels=[[5, 11]]",
                                "model.conv_strides=[[2, 4]]", "model.rnn_layers=1", "model.rnn_hidden=16",
                                f"train.noise_cuts={noise_cuts}", "train.noise_prob=1", "train.spec_augment=false"])
    fbank = tiny_corpus / "fbank"
    data = TrainData(fbank / "synth_cuts_train.jsonl.gz", fbank / "synth_cuts_dev.jsonl.gz",
                     fbank / "synth_stats_train.pt")
    trainer = Trainer(cfg, data, CharTokenizer(), tmp_path / "exp")
    trainer.tb.close()
    cuts = train_cuts(tiny_corpus).subset(first=4)
    torch.manual_seed(0)
    noisy = trainer.train_set[cuts]
    clean = batch(cuts)
    assert noisy["cut_ids"] == clean["cut_ids"] and torch.equal(noisy["feature_lens"], clean["feature_lens"])
    for i, frames in enumerate(clean["feature_lens"].tolist()):
        assert noisy["features"][i, :frames].exp().sum() > clean["features"][i, :frames].exp().sum()  # noise added

    cfg.train.noise_cuts = str(tmp_path / "none.jsonl.gz")
    with pytest.raises(TrainingStopped, match="train.noise_cuts: no file"):
        Trainer(cfg, data, CharTokenizer(), tmp_path / "exp2")
