"""What the augmentation options cost: the features stage with and without speed perturbation, and
a training step with and without noise mixed in (train.noise_cuts), measured in one run.

    python bench/augmentation.py egs/synth/data/manifests --prefix synth \
        --noise-cuts egs/synth/data/fbank/musan_cuts_noise.jsonl.gz

Features: `--num-cuts` cuts of the training set, computed as `ds2 features` does (one process),
once as they are and once with `--speed-perturb 0.9,1.1` (the cuts and their two copies). Steps:
one batch of `--batch-seconds` of those cuts, prepared by the training dataset (features loaded,
padded, tokenised) without and with `NoiseMix` at noise_prob 1, then trained on (forward,
backward, AdamW step) by the model of `--config` in float32; the same batch for both, so the
difference is the mixing. Prints seconds and the ratios to the baselines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lhotse import CutSet, RecordingSet, SupervisionSet

from ds2.config import resolve_config
from ds2.data.augment import NoiseMix
from ds2.data.dataset import AsrDataset
from ds2.data.features import FeatureConfig, compute_cut_features, make_extractor, with_speed_perturbation
from ds2.model import DeepSpeech2
from ds2.text import CharTokenizer
from ds2.train.loss import compute_loss

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall seconds of `repeats` calls of `fn`, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifests", type=Path, help="folder of PREFIX_{recordings,supervisions}_SPLIT.jsonl.gz")
    p.add_argument("--prefix", default="synth")
    p.add_argument("--split", default="train")
    p.add_argument("--num-cuts", type=int, default=100)
    p.add_argument("--noise-cuts", type=Path, required=True, help="noise cut set with fbank features")
    p.add_argument("--config", default=str(REPO / "egs/synth/conf/ds2.yaml"))
    p.add_argument("--batch-seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    recs = RecordingSet.from_file(args.manifests / f"{args.prefix}_recordings_{args.split}.jsonl.gz")
    sups = SupervisionSet.from_file(args.manifests / f"{args.prefix}_supervisions_{args.split}.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recs, supervisions=sups).subset(first=args.num_cuts).to_eager()
    extractor = make_extractor(FeatureConfig())
    with tempfile.TemporaryDirectory() as tmp:
        t_plain, plain = timed(lambda: compute_cut_features(cuts, extractor, Path(tmp) / "plain", 1, "plain"),
                               args.repeats)
        t_sp, _ = timed(lambda: compute_cut_features(with_speed_perturbation(cuts, [0.9, 1.1]), extractor,
                                                     Path(tmp) / "sp", 1, "speeds"), args.repeats)
        print(f"features of {len(cuts)} cuts ({sum(c.duration for c in cuts) / 60:.1f} min of audio): "
              f"{t_plain:.2f} s; with --speed-perturb 0.9,1.1: {t_sp:.2f} s ({t_sp / t_plain:.2f}x)")
        torch.set_num_threads(args.threads or os.cpu_count())  # the feature shards set one thread

        batch_cuts, total = [], 0.0
        for cut in plain:
            if total + cut.duration > args.batch_seconds:
                break
            batch_cuts.append(cut)
            total += cut.duration
        batch_cuts = CutSet.from_cuts(batch_cuts)
        noise = CutSet.from_file(args.noise_cuts).to_eager()
        tokenizer = CharTokenizer()
        clean_set = AsrDataset(tokenizer)
        noisy_set = AsrDataset(tokenizer, cut_transforms=[NoiseMix(noise, 1.0, (10, 20))])
        cfg = resolve_config(args.config, ["train.dtype=float32"])
        model = DeepSpeech2(cfg.model, plain[0].num_features, tokenizer.vocab_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        device = torch.device("cpu")

        def step(dataset):
            batch = dataset[batch_cuts]
            prepared = time.perf_counter()
            loss, tokens, _, _ = compute_loss(model, batch, device, "float32")
            optimizer.zero_grad(set_to_none=True)
            (loss / tokens).backward()
            optimizer.step()
            return prepared

        results = {}
        for name, dataset in (("clean", clean_set), ("noise", noisy_set), ("clean", clean_set), ("noise", noisy_set)):
            prep, total_t = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                prepared = step(dataset)
                end = time.perf_counter()
                prep.append(prepared - start)
                total_t.append(end - start)
            results.setdefault(name, []).append((statistics.median(prep), statistics.median(total_t)))
        (prep_c, step_c), (prep_n, step_n) = (min(results[k], key=lambda r: r[1]) for k in ("clean", "noise"))
        print(f"batch of {len(batch_cuts)} cuts, {total:.1f} s of audio, model {model.num_params() / 1e6:.2f} M "
              f"parameters, {torch.get_num_threads()} threads:")
        print(f"  batch preparation: {1000 * prep_c:.1f} ms clean, {1000 * prep_n:.1f} ms with noise "
              f"({prep_n / prep_c:.2f}x)")
        print(f"  whole step (preparation, forward, backward, AdamW): {1000 * step_c:.0f} ms clean, "
              f"{1000 * step_n:.0f} ms with noise ({step_n / step_c:.3f}x)")


if __name__ == "__main__":
    main()
