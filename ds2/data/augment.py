"""Feature augmentation for training batches: frequency warping, Lhotse's SpecAugment, and
`training_augment`, which builds their chain from the training config; noise mixed into the
batch's cuts (`NoiseMix`, Lhotse's CutMix), built by `training_cut_transforms`."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from lhotse import CutSet
    from lhotse.cut import Cut

    from ds2.config import TrainConfig

log = logging.getLogger(__name__)


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


class NoiseMix:
    """Noise mixed into a share `prob` of a batch's cuts at an SNR drawn uniformly from `snr`
    (dB), by Lhotse's CutMix: each cut becomes a MixedCut of its features and a random stretch
    of a random noise cut's (repeated when shorter), mixed in the power domain when the
    features load (`FeatureExtractor.mix`). Cut ids, durations, supervisions and frame counts
    stay those of the speech.

    The noise and SNR draws come from torch's generator, which `train.seed` seeds, the
    DataLoader seeds per worker and epoch, and checkpoints save (num_workers 0)."""

    def __init__(self, noise: "CutSet", prob: float, snr: tuple[float, float]):
        self.noise, self.prob, self.snr = noise, prob, (float(snr[0]), float(snr[1]))

    def __call__(self, cuts: "CutSet") -> "CutSet":
        from lhotse.dataset import CutMix

        seed = random.Random(int(torch.randint(0, 2**62, ())))
        # pad_to_longest would stretch every cut to the batch's longest with noise: CTC needs the true lengths
        mix = CutMix(self.noise, snr=self.snr, p=self.prob, pad_to_longest=False, preserve_id=True, seed=seed,
                     random_mix_offset=True)
        return mix(cuts)


def read_noise_cuts(paths: list[str], like: "Cut", error: type[Exception] = ValueError) -> "CutSet":
    """The cuts of the noise cut sets `paths`, in memory. Raises `error` with a one-line message
    when a file is missing, has no cut, or holds cuts without features or with features other
    than those of the training cut `like` (kind, dimension, frame shift, sampling rate), which
    Lhotse could not mix."""
    from lhotse import CutSet

    cuts = []
    for path in paths:
        if not Path(path).is_file():
            raise error(f"train.noise_cuts: no file {path} (make it with `ds2 prepare musan` and "
                        f"`ds2 features ... --prefix musan --recordings-only`)")
        noise = CutSet.from_file(path).to_eager()
        if len(noise) == 0:
            raise error(f"train.noise_cuts: {path} holds no cut")
        for cut in noise:
            if not cut.has_features:
                raise error(f"train.noise_cuts: {cut.id} of {path} has no features (compute them with "
                            "`ds2 features ... --recordings-only`)")
            theirs = (cut.features.type, cut.num_features, cut.frame_shift, cut.sampling_rate)
            ours = (like.features.type, like.num_features, like.frame_shift, like.sampling_rate)
            if theirs != ours:
                raise error(f"train.noise_cuts: {path} holds {_describe(*theirs)} features, the training cuts "
                            f"{_describe(*ours)}: compute the noise features with the same --kind and --num-mel-bins")
        cuts += list(noise)
    return CutSet.from_cuts(cuts)


def _describe(kind: str, dims: int, frame_shift: float, sampling_rate: int) -> str:
    return f"{kind} ({dims} dims, {1000 * frame_shift:g} ms shift, {sampling_rate} Hz)"


def training_cut_transforms(tc: "TrainConfig", like: "Cut", error: type[Exception] = ValueError) -> list:
    """The transforms of training batches' cuts that `tc` asks for: `NoiseMix` of the noise of
    `tc.noise_cuts` (checked against the training cut `like` by `read_noise_cuts`, which raises
    `error`), or none."""
    paths = [p.strip() for p in tc.noise_cuts.split(",") if p.strip()]
    if not paths:
        return []
    noise = read_noise_cuts(paths, like, error)
    log.info("noise: %d cuts, %.2f hours, from %s, mixed into %g%% of the training utterances at %g-%g dB SNR",
             len(noise), sum(c.duration for c in noise) / 3600, ", ".join(paths), 100 * tc.noise_prob,
             *tc.noise_snr)
    return [NoiseMix(noise, tc.noise_prob, tuple(tc.noise_snr))]
