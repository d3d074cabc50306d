"""Peak memory of training's data pipeline on a LibriSpeech-size manifest: the cuts read
eagerly (what `ds2 train` did before) against `ds2.data.train_cuts.TrainCuts` (what it does now).

    python bench/data_memory.py [--num-cuts 281241] [--batches 300]

The manifest is made here: 40 cuts with Lilcom fbank features of 2-30 s (random values) and
transcripts, repeated under new ids to --num-cuts (960 h of LibriSpeech has 281,241 cuts).
Each way runs in a fresh process: read the cuts, drop the ones training cannot use (the
check of ds2.data.filter), walk SortaGrad's epoch 0 (every batch) and the first --batches
batches of the bucketed epoch 1, loading no features. Prints each process's peak resident
memory (ru_maxrss) above what the process held after its imports, the wall time, and the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def make_manifest(root: Path, num_cuts: int) -> Path:
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut
    from lhotse.features.base import Features
    from lhotse.features.io import LilcomChunkyWriter

    rng = np.random.default_rng(0)
    words = "the of and to a in that was he it his with as for had you not be her is".split()
    base = []
    with LilcomChunkyWriter(str(root / "feats")) as writer:
        for i in range(40):
            seconds = float(rng.uniform(2, 30))
            frames = int(seconds * 100)
            feats = rng.standard_normal((frames, 80)).astype(np.float32)
            key = writer.write(f"base-{i}", feats)
            rec = Recording(id=f"base-{i}", sources=[], sampling_rate=16000, num_samples=int(seconds * 16000),
                            duration=seconds)
            text = " ".join(rng.choice(words, size=int(seconds * 2.5)))
            base.append(MonoCut(id=f"base-{i}", start=0, duration=seconds, channel=0, recording=rec,
                                supervisions=[SupervisionSegment(id=f"base-{i}", recording_id=f"base-{i}", start=0,
                                                                 duration=seconds, text=text, speaker="s")],
                                features=Features(type="kaldi-fbank", num_frames=frames, num_features=80,
                                                  frame_shift=0.01, sampling_rate=16000, start=0, duration=seconds,
                                                  storage_type=writer.name, storage_path=str(root / "feats"),
                                                  storage_key=key)))
    path = root / "cuts.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for n in range(num_cuts):
            d = base[n % len(base)].to_dict()
            d["id"] = d["supervisions"][0]["id"] = f"{n:06d}-{d['id']}"
            f.write(json.dumps(d) + "\n")
    return path


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(way: str, path: str, batches: int, out) -> None:
    import itertools

    from lhotse import CutSet
    from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler

    from ds2.data.filter import TrainableCuts, filter_trainable
    from ds2.data.sampler import make_train_sampler
    from ds2.data.train_cuts import TrainCuts
    from ds2.model import DeepSpeech2, ModelConfig
    from ds2.text import CharTokenizer

    tok = CharTokenizer()
    model = DeepSpeech2(ModelConfig(rnn_layers=1, rnn_hidden=8, conv_channels=[2], conv_kernels=[[11, 41]],
                                    conv_strides=[[2, 2]]), 80, tok.vocab_size)
    base = peak_rss()
    start = time.perf_counter()
    if way == "eager":  # ds2 train before: the whole CutSet in memory, sorted and bucketed by Lhotse
        cuts = filter_trainable(CutSet.from_file(path), tok, model, "train").to_eager()
        n = sum(1 for _ in SimpleCutSampler(cuts.sort_by_duration(), max_duration=1200, shuffle=False))
        later = DynamicBucketingSampler(cuts, max_duration=1200, shuffle=True, num_buckets=30, seed=0)
    else:
        check = TrainableCuts(tok, model, "train")
        cuts = TrainCuts.from_cuts(CutSet.from_jsonl_lazy(path), check.keep)
        n = sum(1 for _ in make_train_sampler(cuts, 1200, epoch=0, num_buckets=30))
        later = make_train_sampler(cuts, 1200, epoch=1, num_buckets=30)
    m = sum(1 for _ in itertools.islice(later, batches))
    out.put((peak_rss() - base, time.perf_counter() - start, len(cuts), n, m))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-cuts", type=int, default=281_241)
    p.add_argument("--batches", type=int, default=300, help="batches of epoch 1 to walk")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = make_manifest(Path(tmp), args.num_cuts)
        print(f"manifest: {args.num_cuts} cuts, {path.stat().st_size / 2**20:.0f} MiB gzipped "
              f"(made in {time.perf_counter() - t0:.0f} s)")
        results = {}
        ctx = mp.get_context("spawn")
        for way in ("eager", "lazy"):
            q = ctx.Queue()
            proc = ctx.Process(target=run, args=(way, str(path), args.batches, q))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"the {way} process failed (exit status {proc.exitcode})")
            results[way] = q.get()
            mem, secs, kept, n0, n1 = results[way]
            print(f"{way}: peak memory +{mem / 2**20:.0f} MiB, {secs:.0f} s ({kept} cuts kept, epoch 0: {n0} batches, "
                  f"epoch 1: {n1} batches walked)")
        (em, es, *_), (lm, ls, *_) = results["eager"], results["lazy"]
        print(f"lazy / eager: memory {lm / em:.3f}, time {ls / es:.2f}")


if __name__ == "__main__":
    main()
