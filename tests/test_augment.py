import pytest
import torch

from ds2.data.augment import Chain, FrequencyWarp


def test_frequency_warp_moves_a_formant_by_the_drawn_factor():
    torch.manual_seed(0)
    feats = torch.zeros(64, 3, 80)
    feats[:, :, 40] = 1.0
    feats[:, 2] = 0.0  # a padding frame
    warped = FrequencyWarp(0.1)(feats)
    assert warped.shape == feats.shape
    peaks = warped[:, 0].argmax(dim=1)
    assert peaks.min() >= 36 and peaks.max() <= 44  # 40 * 0.9 .. 40 * 1.1
    assert len(set(peaks.tolist())) >= 5  # each utterance draws its own factor
    assert torch.equal(warped[:, 0], warped[:, 1])  # one factor for all frames of an utterance
    assert warped[:, 2].abs().max() == 0.0


def test_frequency_warp_of_zero_is_the_identity_and_chain_applies_in_order():
    feats = torch.randn(2, 7, 20)
    assert torch.equal(FrequencyWarp(0.0)(feats), feats)
    assert torch.equal(Chain(None, lambda x: x + 1, lambda x: x * 2)(feats), (feats + 1) * 2)
    with pytest.raises(ValueError):
        FrequencyWarp(1.5)


def test_training_augment_follows_the_config():
    from ds2.config import TrainConfig
    from ds2.data.augment import training_augment

    assert training_augment(TrainConfig(spec_augment=False, freq_warp=0.0)) is None
    warp_only = training_augment(TrainConfig(spec_augment=False, freq_warp=0.1))
    assert [type(s).__name__ for s in warp_only.steps] == ["FrequencyWarp"]
    both = training_augment(TrainConfig(spec_augment=True, freq_warp=0.1, freq_masks=3))
    assert [type(s).__name__ for s in both.steps] == ["FrequencyWarp", "SpecAugment"]
    assert both.steps[1].num_feature_masks == 3
