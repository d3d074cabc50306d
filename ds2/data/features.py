"""Acoustic features through Lhotse extractors, stored with Lilcom.

Two kinds: DS2's log spectrogram (161 bins of a 20 ms window, 10 ms hop) and the log-mel
filterbank (25 ms windows, as Kaldi's, icefall's and sherpa-onnx's, so that `ds2 export --format
sherpa-onnx` can hand a model to sherpa-onnx's own feature extractor), which may carry pitch
features (`ds2.data.pitch`, for tonal languages) after its bins. The training sets may get
speed-perturbed copies (Lhotse `perturb_speed`), and sets of noise recordings without supervisions
(MUSAN) get features for mixing into training batches (`ds2.data.augment.NoiseMix`). Entry point:
`ds2 features data/manifests data/fbank --prefix synth`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Spectrogram, SpectrogramConfig
from lhotse.features.base import register_extractor
from ds2.progress import progress

from ds2.atomic import save_atomic, write_atomic
from ds2.data.pitch import NUM_PITCH_FEATURES, PitchTracker
from ds2.data.wav import wav_truncation

log = logging.getLogger(__name__)


@register_extractor
class LogSpectrogram(Spectrogram):
    """Lhotse's (power) spectrogram on a log scale, as Deep Speech 2 uses it."""

    name = "log-spectrogram"

    def extract(self, samples, sampling_rate):
        power = super().extract(samples, sampling_rate)
        if isinstance(power, torch.Tensor):
            return torch.log(power.clamp_min(1e-10))
        return np.log(np.maximum(power, 1e-10)).astype(np.float32)

    # Lhotse mixes features (MixedCut, CutMix) with these; Spectrogram's add power values, which
    # would be wrong on a log scale: mix, energies and scaling in the power domain, as Fbank's.
    @staticmethod
    def mix(features_a: np.ndarray, features_b: np.ndarray, energy_scaling_factor_b: float) -> np.ndarray:
        return np.log(np.maximum(1e-10, np.exp(features_a) + energy_scaling_factor_b * np.exp(features_b)))

    @staticmethod
    def compute_energy(features: np.ndarray) -> float:
        return float(np.sum(np.exp(features)))

    @staticmethod
    def scale(features: np.ndarray, energy_scaling_factor: float) -> np.ndarray:
        return features + np.log(energy_scaling_factor)


@register_extractor
class FbankPitch(Fbank):
    """Lhotse's log-mel filterbank, then `ds2.data.pitch`'s features (NCCF, log pitch) of each frame."""

    name = "ds2-fbank-pitch"

    def feature_dim(self, sampling_rate: int) -> int:
        return self.config.num_filters + NUM_PITCH_FEATURES

    def _tracker(self) -> PitchTracker:
        rate = self.config.sampling_rate
        return PitchTracker(rate, int(round(self.config.frame_shift * rate)), int(self.config.frame_length * rate))

    def extract(self, samples, sampling_rate):
        fbank = super().extract(samples, sampling_rate)
        audio = samples.cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
        pitch = self._tracker()(audio.reshape(-1), len(fbank))
        if isinstance(fbank, torch.Tensor):
            return torch.cat([fbank, torch.from_numpy(pitch).to(fbank)], dim=1)
        return np.concatenate([fbank, pitch], axis=1)

    def extract_batch(self, samples, sampling_rate, lengths=None):
        raise NotImplementedError("ds2 computes fbank-pitch features one cut at a time")

    # Mixing noise into the speech (CutMix) mixes the filterbank parts as Lhotse's Fbank does and keeps
    # the pitch of the speech (features_a): the pitch features describe what is spoken.
    @staticmethod
    def mix(features_a: np.ndarray, features_b: np.ndarray, energy_scaling_factor_b: float) -> np.ndarray:
        bins = slice(0, features_a.shape[1] - NUM_PITCH_FEATURES)
        mixed = Fbank.mix(features_a[:, bins], features_b[:, bins], energy_scaling_factor_b)
        return np.concatenate([mixed, features_a[:, bins.stop:]], axis=1)

    @staticmethod
    def compute_energy(features: np.ndarray) -> float:
        return Fbank.compute_energy(features[:, :-NUM_PITCH_FEATURES])

    @staticmethod
    def scale(features: np.ndarray, energy_scaling_factor: float) -> np.ndarray:
        bins = features[:, :-NUM_PITCH_FEATURES] + np.log(energy_scaling_factor)
        return np.concatenate([bins, features[:, -NUM_PITCH_FEATURES:]], axis=1)


@dataclass
class FeatureConfig:
    """Which features to compute."""

    kind: str = "fbank"  # "fbank" (log-mel) or "spectrogram" (DS2's log spectrogram)
    num_mel_bins: int = 80  # fbank only
    frame_shift: float = 0.01  # seconds between frames
    window: float | None = None  # seconds per analysis window; None: DEFAULT_WINDOW of the kind
    pitch: bool = False  # fbank only: NUM_PITCH_FEATURES pitch features after the bins (`ds2.data.pitch`)

    def __post_init__(self):
        if self.window is None:
            self.window = DEFAULT_WINDOW.get(self.kind, DEFAULT_WINDOW["fbank"])


# Seconds per analysis window by kind. Spectrogram: DS2's 20 ms (320 samples give 161 bins). Fbank:
# Kaldi's 25 ms, the window of the extractor sherpa-onnx runs (kaldi-native-fbank, whose frame length
# its Python API does not expose). Models trained on 20 ms fbank windows (the default
# until 25 ms) keep theirs: every checkpoint carries its own settings (`feature_settings`).
DEFAULT_WINDOW = {"fbank": 0.025, "spectrogram": 0.02}
# The fbank window of stats files written before they held their settings (feature_settings_of_cut)
LEGACY_FBANK_WINDOW = 0.02


def feature_settings(cfg: FeatureConfig, sampling_rate: int) -> dict:
    """The settings a trained model needs to compute its features again from audio (`ds2
    transcribe`): the FeatureConfig's fields and the sampling rate. Written into the stats file
    of `ds2 features`, and from there into every checkpoint."""
    return {**dataclasses.asdict(cfg), "sampling_rate": int(sampling_rate)}


def feature_settings_of_cut(cut) -> dict | None:
    """The settings of a cut's stored features, as far as its manifest tells them (for stats files
    written before they held the settings): the kind, bins, frame shift and rate; the window is
    the one of those days for fbank (LEGACY_FBANK_WINDOW: no command set another), or for a
    spectrogram the one its bins imply. None for features of another extractor."""
    f = cut.features
    if f.type == Fbank.name:
        cfg = FeatureConfig(kind="fbank", num_mel_bins=f.num_features, frame_shift=f.frame_shift,
                            window=LEGACY_FBANK_WINDOW)
    elif f.type == FbankPitch.name:
        cfg = FeatureConfig(kind="fbank", num_mel_bins=f.num_features - NUM_PITCH_FEATURES,
                            frame_shift=f.frame_shift, pitch=True, window=LEGACY_FBANK_WINDOW)
    elif f.type == LogSpectrogram.name:
        cfg = FeatureConfig(kind="spectrogram", frame_shift=f.frame_shift,
                            window=2 * (f.num_features - 1) / f.sampling_rate)
    else:
        return None
    return feature_settings(cfg, f.sampling_rate)


def make_extractor(cfg: FeatureConfig):
    if cfg.pitch and cfg.kind != "fbank":
        raise ValueError(f"pitch features come with fbank features only, not {cfg.kind}")
    if cfg.kind == "fbank":
        return (FbankPitch if cfg.pitch else Fbank)(FbankConfig(
            num_filters=cfg.num_mel_bins, frame_length=cfg.window, frame_shift=cfg.frame_shift))
    if cfg.kind == "spectrogram":
        return LogSpectrogram(SpectrogramConfig(frame_length=cfg.window, frame_shift=cfg.frame_shift,
                                                round_to_power_of_two=False))
    raise ValueError(f"unknown feature kind {cfg.kind!r}: choose fbank or spectrogram")


def as_mono_at(cut, sampling_rate: int):
    """`cut` as one channel at `sampling_rate`, computed on the fly by Lhotse: resampled
    (`cut.resample`) when recorded at another rate, and a multi-channel recording mixed down
    to the mean of its channels (a MixedCut of the per-channel cuts, each at 1/C volume)."""
    from lhotse.cut import MixedCut, MixTrack
    from lhotse.utils import fastcopy

    if cut.sampling_rate != sampling_rate:
        cut = cut.resample(sampling_rate)
    if cut.num_channels is None or cut.num_channels <= 1:
        return cut
    channels = cut.to_mono(mono_downmix=False)
    tracks = [MixTrack(cut=fastcopy(c.perturb_volume(1.0 / len(channels), affix_id=False), supervisions=[]),
                       offset=0.0) for c in channels]
    return MixedCut(id=cut.id, tracks=tracks)


def truncated_audio(cut) -> str | None:
    """Which of `cut`'s audio files is shorter than its WAV header says, and by how much, or None
    (soundfile would read the samples that are there, under the whole transcript)."""
    recording = getattr(cut, "recording", None)
    for source in recording.sources if recording is not None else ():
        why = wav_truncation(Path(source.source)) if source.type == "file" else None
        if why:
            return f"{source.source} is truncated ({why})"
    return None


def features_of(cut, extractor, writer):
    """`cut` with its features (of `as_mono_at` the extractor's rate) stored by `writer`. A mix of
    channels comes back as a MonoCut without a recording, carrying the original supervisions
    once, on channel 0."""
    from lhotse.utils import fastcopy

    mono = as_mono_at(cut, extractor.config.sampling_rate)
    done = mono.compute_and_store_features(extractor, writer)
    if mono is not cut and (cut.num_channels or 1) > 1:
        done = fastcopy(done, supervisions=[fastcopy(s, channel=0) for s in cut.supervisions])
    return done


def _ignore_sigint():
    # Ctrl-C reaches the whole process group; only the main process handles it, so no worker
    # dies with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _compute_shard(args) -> tuple[list, list[tuple[str, str]]]:
    """Cuts with features, and (id, error) of those whose audio is empty or fails to load
    (a zero-length or truncated file): each audio file is opened once, here."""
    cuts, extractor, storage_path = args
    torch.set_num_threads(1)  # one process per core; threads inside would oversubscribe them
    done, failed = [], []
    with LilcomChunkyWriter(storage_path) as writer:
        for cut in cuts:
            try:
                if cut.duration <= 0:
                    raise ValueError("no samples")
                truncated = truncated_audio(cut)
                if truncated:
                    raise ValueError(truncated)
                done.append(features_of(cut, extractor, writer))
            except Exception as e:  # noqa: BLE001 - a truncated or corrupt file is reported, not fatal
                failed.append((cut.id, f"{type(e).__name__}: {e}".splitlines()[0]))
    return done, failed


class FeatureWorkers:
    """The worker processes of `compute_cut_features` (`num_jobs` of them; none for one job),
    started at the first set that needs them and kept for the next ones: each start imports
    torch and Lhotse, seconds of a run over several small sets. Use as a context manager."""

    def __init__(self, num_jobs: int):
        self.num_jobs = num_jobs
        self.pool: ProcessPoolExecutor | None = None

    def submit(self, jobs: list) -> list:
        """Futures of `_compute_shard` over `jobs`, in the worker processes (started here if not yet)."""
        # Ctrl-C reaches the whole process group. The workers ignore it (`_ignore_sigint`), so
        # only this process stops: leaving the block cancels the shards not started and waits
        # for the running ones (a few seconds). While the workers start, SIGINT is blocked in
        # this thread (they inherit the mask through exec, so none dies of it before its
        # initializer runs) and only recorded (another thread may take it); a Ctrl-C then
        # stops us once they have started, rather than being lost (it was ignored before,
        # and a run interrupted under load went on to exit 0). A worker that dies (killed,
        # out of memory) raises BrokenProcessPool here rather than leaving us waiting.
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.num_jobs, mp_context=get_context("spawn"),
                                            initializer=_ignore_sigint)
        interrupted = []
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            futures = [self.pool.submit(_compute_shard, job) for job in jobs]  # starts the workers
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one: recorded
            signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt
        return futures

    def close(self):
        """Cancel the shards not started, wait for the running ones and end the processes."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compute_cut_features(cuts: CutSet, extractor, storage_dir: Path, num_jobs: int, desc: str,
                         workers: FeatureWorkers | None = None) -> CutSet:
    """Features of `cuts` in `storage_dir`, computed in shards over `num_jobs` processes with a
    progress bar per cut. Audio at another sampling rate is resampled and several channels are
    mixed down to one (`as_mono_at`). Cuts whose audio fails to load (e.g. a truncated file) are
    logged with their ids and left out; when every cut fails, ValueError. A half-written
    `storage_dir` from an interrupted run is replaced, and one interrupted now (Ctrl-C) is removed.
    `workers` (of `num_jobs` processes) are the processes to use and keep for the next sets;
    without them, processes are started for these cuts only."""
    storage_dir = storage_dir.resolve()  # the cut set names absolute paths: readable from any working directory
    if storage_dir.exists():
        shutil.rmtree(storage_dir)
    storage_dir.mkdir(parents=True)
    shard_size = max(1, min(200, math.ceil(len(cuts) / (4 * max(1, num_jobs)))))
    items = list(cuts)
    shards = [CutSet.from_cuts(items[i:i + shard_size]) for i in range(0, len(items), shard_size)]
    jobs = [(shard, extractor, storage_dir / f"feats-{i:04d}") for i, shard in enumerate(shards)]
    done, failed = [], []
    try:
        with progress(total=len(cuts), desc=desc, unit="cut") as bar, ExitStack() as stack:
            results = map(_compute_shard, jobs)
            if num_jobs > 1:
                if workers is None:
                    workers = stack.enter_context(FeatureWorkers(num_jobs))
                # leaving the block on an error (Ctrl-C, a dead worker) ends the processes first
                # (`FeatureWorkers.close`), so that none writes into storage_dir once it is removed
                stack.push(lambda exc_type, *_: workers.close() if exc_type is not None else None)
                futures = workers.submit(jobs)
                results = (f.result() for f in futures)
            for job, (shard_done, shard_failed) in zip(jobs, results):
                done += shard_done
                failed += shard_failed
                bar.update(len(job[0]))
    except BaseException:
        shutil.rmtree(storage_dir, ignore_errors=True)
        raise
    for cut_id, error in failed:
        log.warning("skipping %s: unreadable audio (%s)", cut_id, error)
    if failed:
        log.warning("%d cuts with unreadable audio were skipped: %s", len(failed),
                    " ".join(cut_id for cut_id, _ in failed[:20]))
    if not done:
        shutil.rmtree(storage_dir, ignore_errors=True)
        example = f" (e.g. {failed[0][0]}: {failed[0][1]})" if failed else ""
        raise ValueError(f"{desc}: none of the {len(items)} cuts has readable audio{example}")
    return CutSet.from_cuts(done)


def stats_name(stats_from: list[str]) -> str:
    """The stats file's set part: the training sets joined by '+' (e.g. `train`, `a+b`)."""
    return "+".join(stats_from)


def check_speed_factors(factors) -> list[float]:
    """The speed perturbation factors, in order; ValueError (one line) unless each is a positive
    number other than 1 and none repeats."""
    factors = list(factors)
    bad = [f for f in factors if not (isinstance(f, (int, float)) and math.isfinite(f) and f > 0 and f != 1)]
    if bad or len(set(factors)) < len(factors):
        raise ValueError(f"speed perturbation factors must be positive numbers other than 1, each once (e.g. "
                         f"0.9,1.1), not {','.join(map(str, factors))}")
    return [float(f) for f in factors]


def with_speed_perturbation(cuts: CutSet, factors: list[float]) -> CutSet:
    """`cuts`, then a copy of them for each factor played that much faster (Lhotse
    `perturb_speed`: the audio resampled on the fly, durations divided by the factor, ids with
    `_sp<factor>` appended to the cut, recording and supervision ids)."""
    originals = list(cuts)
    return CutSet.from_cuts(originals + [c.perturb_speed(f) for f in factors for c in originals])


def compute_features(manifest_dir: str | Path, output_dir: str | Path, prefix: str, splits: list[str],
                     cfg: FeatureConfig, num_jobs: int = 2, stats_from: list[str] = ("train",),
                     speed_perturb: list[float] = (), recordings_only: bool = False) -> dict[str, Path]:
    """Cut sets with features for each split: `output_dir/{prefix}_cuts_{split}.jsonl.gz`.

    Reads `manifest_dir/{prefix}_{recordings,supervisions}_{split}.jsonl.gz`. When every set of
    `stats_from` (the training sets) is among `splits`, it also writes the global mean/std of
    their features, `{prefix}_stats_{'+'.join(stats_from)}.pt` (e.g. `synth_stats_train.pt`);
    when none is, no statistics are computed, and when only some are, ValueError. Every
    supervision is a cut of its own, named by its id (a Kaldi `segments` file gives several per
    recording); a recording without one has none.

    `speed_perturb` (e.g. [0.9, 1.1]) adds a speed-perturbed copy of every cut of the
    `stats_from` sets per factor (`with_speed_perturbation`), stored in the same cut set and
    counted in the statistics; the other sets (dev, test) are never perturbed.
    `recordings_only` makes cuts of whole recordings from `{prefix}_recordings_{split}.jsonl.gz`
    alone (noise such as MUSAN's, for `train.noise_cuts`), without statistics or perturbation.
    """
    from lhotse import RecordingSet, SupervisionSet

    manifest_dir, output_dir = Path(manifest_dir), Path(output_dir)
    speed_perturb = check_speed_factors(speed_perturb)
    if recordings_only and speed_perturb:
        raise ValueError("speed perturbation is for training sets, not for recordings without supervisions "
                         "(--recordings-only)")
    stats_from = [] if recordings_only else list(stats_from)
    in_splits = [s for s in stats_from if s in splits]
    if in_splits and len(in_splits) < len(stats_from):
        missing = [s for s in stats_from if s not in splits]
        raise ValueError(f"the statistics come from {', '.join(stats_from)}, but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not among the splits computed now "
                         f"({', '.join(splits)})")
    for split in splits:  # every manifest is there before hours of features start
        for kind in ("recordings",) if recordings_only else ("recordings", "supervisions"):
            if not (manifest_dir / f"{prefix}_{kind}_{split}.jsonl.gz").is_file():
                raise FileNotFoundError(f"no {manifest_dir / f'{prefix}_{kind}_{split}.jsonl.gz'} (check --prefix "
                                        f"and --splits against the files of {manifest_dir})")
    output_dir.mkdir(parents=True, exist_ok=True)
    extractor = make_extractor(cfg)
    written, stats_cuts = {}, []
    stats_path = output_dir / f"{prefix}_stats_{stats_name(stats_from)}.pt"
    if in_splits:
        stats_path.unlink(missing_ok=True)  # never old statistics beside new features
    workers = FeatureWorkers(num_jobs)  # one set of processes for every split
    with workers:
        for split in splits:
            recs = RecordingSet.from_file(manifest_dir / f"{prefix}_recordings_{split}.jsonl.gz")
            sups = None if recordings_only else SupervisionSet.from_file(
                manifest_dir / f"{prefix}_supervisions_{split}.jsonl.gz")
            path = output_dir / f"{prefix}_cuts_{split}.jsonl.gz"
            path.unlink(missing_ok=True)  # never an old cut set beside new features
            cuts, desc = CutSet.from_manifests(recordings=recs, supervisions=sups), f"{cfg.kind} {split}"
            if sups is not None:  # one cut per utterance, named by it (a Kaldi `segments` file: several per recording)
                cuts = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()
            if speed_perturb and split in stats_from:
                cuts = with_speed_perturbation(cuts, speed_perturb)
                desc += f" (and speeds {','.join(f'{f:g}' for f in speed_perturb)})"
            cuts = compute_cut_features(cuts, extractor, output_dir / f"{prefix}_feats_{split}", num_jobs, desc=desc,
                                        workers=workers)
            write_atomic(path, cuts.to_file)
            written[split] = path
            if split in stats_from:
                stats_cuts.append(cuts)
    if in_splits:
        stats = feature_stats(CutSet.from_cuts(c for cuts in stats_cuts for c in cuts))
        save_atomic({**stats, "features": feature_settings(cfg, extractor.config.sampling_rate)}, stats_path)
        written["stats"] = stats_path
    return written


def feature_stats(cuts: CutSet) -> dict[str, torch.Tensor]:
    """Per-dimension mean and standard deviation of all frames of `cuts` (float64 sums)."""
    if len(cuts) == 0:
        raise ValueError("no cuts to compute feature statistics on")
    total, total_sq, count = None, None, 0
    for cut in progress(cuts, desc="feature stats", unit="cut"):
        x = torch.from_numpy(cut.load_features()).double()
        total = x.sum(0) if total is None else total + x.sum(0)
        total_sq = (x**2).sum(0) if total_sq is None else total_sq + (x**2).sum(0)
        count += x.shape[0]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-8).sqrt()
    return {"mean": mean.float(), "std": std.float()}
