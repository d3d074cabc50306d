"""Data-parallel scaling on one machine: 1 process x N threads against N processes x 1 thread.

    python bench/ddp_scaling.py [--config egs/synth/conf/ds2.yaml] [--procs 2] [--steps 6]

Both train egs/synth's DeepSpeech2 (forward, backward, AdamW step, in the config's dtype)
on the same global batches of random features: one process takes each global batch whole
with N intra-op threads; N processes (torch.distributed with gloo, DistributedDataParallel,
one thread each, as `torchrun --nproc-per-node N` starts `ds2 train`) take one part each
and all-reduce their gradients. Prints the audio seconds trained per wall second of each and
their ratio.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ds2.model import DeepSpeech2
from ds2.precision import resolve_dtype
from ds2.config import resolve_config
from ds2.train.loss import compute_loss

REPO = Path(__file__).resolve().parents[1]


def global_batches(count: int, batch_seconds: float, num_features: int, vocab: int, seed: int = 0) -> list[list]:
    """Each global batch: utterances of 2-6 s (100 frames per second) with random targets."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        utts, total = [], 0.0
        while total < batch_seconds:
            frames = int(200 + 400 * torch.rand(1, generator=g).item())
            feats = torch.randn(frames, num_features, generator=g)
            targets = torch.randint(1, vocab, (frames // 12,), generator=g, dtype=torch.int32)
            utts.append((feats, targets))
            total += frames / 100
        batches.append(utts)
    return batches


def collate(utts: list) -> dict:
    feats = torch.nn.utils.rnn.pad_sequence([f for f, _ in utts], batch_first=True)
    return {"features": feats, "feature_lens": torch.tensor([len(f) for f, _ in utts]),
            "targets": torch.cat([t for _, t in utts]), "target_lens": torch.tensor([len(t) for _, t in utts]),
            "cut_ids": [str(i) for i in range(len(utts))]}


def worker(rank: int, world: int, threads: int, args, port: int, results) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    cfg = resolve_config(args.config)
    torch.manual_seed(0)
    model = DeepSpeech2(cfg.model, args.num_features, 29)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = global_batches(args.warmup + args.steps, args.batch_seconds, args.num_features, 29)
    dtype, _ = resolve_dtype(cfg.train.dtype, torch.device("cpu"))
    audio = 0.0
    for i, utts in enumerate(batches):
        if i == args.warmup:
            if world > 1:
                dist.barrier()
            start, audio = time.perf_counter(), 0.0
        mine = utts[rank::world]  # this rank's part of the global batch
        batch = collate(mine)
        loss, tokens, _, _ = compute_loss(ddp, batch, torch.device("cpu"), dtype)
        opt.zero_grad(set_to_none=True)
        (loss / max(1, tokens)).backward()
        opt.step()
        audio += float(batch["feature_lens"].sum()) / 100
    if world > 1:
        dist.barrier()
    results.put((rank, audio, time.perf_counter() - start))
    if world > 1:
        dist.destroy_process_group()


def measure(world: int, threads: int, args) -> float:
    """Audio seconds (all ranks together) per wall second."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, world, threads, args, port, results)) for r in range(world)]
    for p in procs:
        p.start()
    got = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a worker failed with exit code {p.exitcode}")
    return sum(a for _, a, _ in got) / max(t for _, _, t in got)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "egs/synth/conf/ds2.yaml"))
    p.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="N: processes, or threads of the one")
    p.add_argument("--batch-seconds", type=float, default=80.0, help="audio per global batch")
    p.add_argument("--num-features", type=int, default=80)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    n = args.procs
    one = measure(1, n, args)
    many = measure(n, 1, args)
    dtype = resolve_dtype(resolve_config(args.config).train.dtype, torch.device("cpu"))[0]
    print(f"DeepSpeech2 of {Path(args.config).name} ({dtype}), global batches of {args.batch_seconds:.0f} s, "
          f"{args.steps} timed steps")
    print("| layout | audio s per wall s | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| 1 process x {n} threads | {one:.1f} | 1.00 |")
    print(f"| {n} processes x 1 thread (DDP, gloo) | {many:.1f} | {many / one:.2f} |")


if __name__ == "__main__":
    main()
