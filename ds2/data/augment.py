"""Feature augmentation for training batches: frequency warping, Lhotse's SpecAugment, and
`training_augment`, which builds their chain from the training config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ds2.config import TrainConfig


class FrequencyWarp:
    """Stretch or squeeze each utterance's spectrum along the frequency axis by a random factor
    in [1 - max_warp, 1 + max_warp]: vocal tract length perturbation (Jaitly and Hinton, 2013)
    on the stored features, which turns the training voices into more voices. Factors above 1
    move formants up (a shorter vocal tract); the top bin is repeated where nothing maps.

    Works on padded (B, T, F) batches of log-mel or log-spectrogram features; padding frames
    stay as they are, because each frame is warped on its own.
    """

    def __init__(self, max_warp: float):
        if not 0.0 <= max_warp < 1.0:
            raise ValueError(f"max_warp must be in [0, 1), not {max_warp}")
        self.max_warp = max_warp

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        batch, frames, bins = feats.shape
        factors = 1.0 + (torch.rand(batch) * 2.0 - 1.0) * self.max_warp
        # Output bin f reads the spectrum at bin f / factor, linearly interpolated.
        source = (torch.arange(bins, dtype=torch.float32)[None, :] / factors[:, None]).clamp(max=bins - 1)
        low = source.floor().long()
        high = (low + 1).clamp(max=bins - 1)
        weight = (source - low).to(feats.dtype)[:, None, :]
        index = low[:, None, :].expand(batch, frames, bins)
        lower = feats.gather(2, index)
        upper = feats.gather(2, high[:, None, :].expand(batch, frames, bins))
        return lower + (upper - lower) * weight


class Chain:
    """Apply augmentations one after another."""

    def __init__(self, *steps):
        self.steps = [s for s in steps if s is not None]

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            feats = step(feats)
        return feats


def training_augment(tc: "TrainConfig"):
    """The augmentation of training batches that `tc` asks for (frequency warping, then
    SpecAugment), or None for none."""
    spec_augment = None
    if tc.spec_augment:
        from lhotse.dataset import SpecAugment

        spec_augment = SpecAugment(time_warp_factor=tc.time_warp or None, num_feature_masks=tc.freq_masks,
                                   features_mask_size=tc.freq_mask_size, num_frame_masks=tc.time_masks,
                                   frames_mask_size=tc.time_mask_size, max_frames_mask_fraction=0.2, p=0.9)
    freq_warp = FrequencyWarp(tc.freq_warp) if tc.freq_warp > 0 else None
    return Chain(freq_warp, spec_augment) if freq_warp or spec_augment else None
