"""Training throughput of the full DeepSpeech2 against a bare nn.GRU stack of the same sizes.

    python bench/train_throughput.py [--config egs/synth/conf/ds2.yaml] [--batch-seconds 120]

Both train (forward, backward, AdamW step) on the same batch in one run, in float32 and
under bfloat16 autocast; bfloat16 is skipped, with the reason, where the device only emulates
it (`ds2.precision`: about 90x slower than float32 on CPUs without AVX-512-BF16/AMX). The bare stack has the model's recurrent sizes exactly (L single-layer
bidirectional `nn.GRU`s of hidden H, directions summed as in the model) on the front-end's
output size and frame rate, padded, with no convolutions, batch norm, packing, FC or CTC.
Prints audio seconds per wall second for each and their ratio, the peak memory of the full
model's training step (CUDA: the allocator's peak; CPU: the process's peak resident set), and with
--profile the operator groups that take the full step's time, to say what bounds it.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from ds2.model import DeepSpeech2
from ds2.precision import native_bfloat16
from ds2.config import resolve_config

REPO = Path(__file__).resolve().parents[1]


def make_batch(batch_seconds: float, mean_seconds: float, num_features: int, seed: int = 0):
    """Utterances of mean_seconds +- 30 % until batch_seconds of audio (100 frames per second)."""
    g = torch.Generator().manual_seed(seed)
    lengths = []
    while sum(lengths) < batch_seconds * 100:
        lengths.append(int(mean_seconds * 100 * (0.7 + 0.6 * torch.rand(1, generator=g).item())))
    lengths = torch.tensor(sorted(lengths, reverse=True))
    feats = torch.randn(len(lengths), int(lengths.max()), num_features, generator=g)
    return feats, lengths


def time_steps(step, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "egs/synth/conf/ds2.yaml"))
    p.add_argument("--num-features", type=int, default=80)
    p.add_argument("--batch-seconds", type=float, default=120.0)
    p.add_argument("--utterance-seconds", type=float, default=3.5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (the bare stack then runs cuDNN's GRU)")
    p.add_argument("--profile", action="store_true", help="print the share of the full step's time per operator group")
    args = p.parse_args()
    if args.profile and args.device != "cpu":
        p.error("--profile is for --device cpu: on CUDA (torch 2.11, H100) torch.profiler's key_averages did not return")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = resolve_config(args.config).model
    device = torch.device(args.device)
    feats, lengths = make_batch(args.batch_seconds, args.utterance_seconds, args.num_features)
    audio = float(lengths.sum()) / 100
    feats, lengths = feats.to(device), lengths.to(device)
    vocab = 29

    model = DeepSpeech2(cfg, args.num_features, vocab).train().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    out_lens = model.output_lengths(lengths)
    targets = torch.randint(1, vocab, (int(out_lens.sum() // 3),), device=device)
    target_lens = torch.full((len(lengths),), len(targets) // len(lengths), device=device)
    targets = targets[: int(target_lens.sum())]

    def full_step():
        log_probs, olens = model(feats, lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, olens, target_lens, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():
        rnn_in, _ = model.front_end(feats, lengths)
    rnn_in = rnn_in.detach()
    dims = [rnn_in.shape[2]] + [cfg.rnn_hidden] * cfg.rnn_layers
    bare = torch.nn.ModuleList(torch.nn.GRU(dims[i], cfg.rnn_hidden, bidirectional=cfg.bidirectional,
                                            batch_first=True) for i in range(cfg.rnn_layers)).to(device)
    bare_opt = torch.optim.AdamW(bare.parameters(), lr=1e-4)

    def bare_step():
        x = rnn_in
        for gru in bare:
            x, _ = gru(x)
            if cfg.bidirectional:
                x = x[..., : cfg.rnn_hidden] + x[..., cfg.rnn_hidden:]
        loss = x.pow(2).mean()
        bare_opt.zero_grad()
        loss.backward()
        bare_opt.step()

    def autocast(dtype):
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def timed(step, dtype):
        def run():
            with autocast(dtype):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return time_steps(run, 1, args.repeats)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"batch: {len(lengths)} utterances, {audio:.1f} s of audio, {rnn_in.shape[1]} RNN frames, "
          f"{where}; DeepSpeech2 {model.num_params() / 1e6:.2f}M params, "
          f"bare GRU stack {sum(q.numel() for q in bare.parameters()) / 1e6:.2f}M params")
    precisions = [("float32", torch.float32)]
    native, why = native_bfloat16(device)
    if native:
        precisions.append(("bfloat16", torch.bfloat16))
    else:
        print(f"bfloat16: skipped, {why}")
    for name, dtype in precisions:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        # Interleave so drift of a shared machine hits both alike; keep the faster of two rounds.
        full_s = min(timed(full_step, dtype), timed(full_step, dtype))
        peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        bare_s = min(timed(bare_step, dtype), timed(bare_step, dtype))
        print(f"{name}: DeepSpeech2 {audio / full_s:.1f} audio s/s ({full_s:.3f} s/step, peak memory "
              f"{peak / 2**30:.1f} GiB{'' if device.type == 'cuda' else ' resident, process-wide'}), "
              f"bare nn.GRU stack {audio / bare_s:.1f} audio s/s ({bare_s:.3f} s/step), "
              f"ratio {bare_s / full_s:.2f}")
        if args.profile:
            profile(lambda: timed(full_step, dtype), device, name)


GROUPS = (("rnn", ("gru", "rnn", "cudnn")), ("matmul", ("mm", "gemm", "linear", "addmm", "bmm")),
          ("conv", ("conv",)), ("ctc", ("ctc",)), ("batch norm", ("batch_norm", "native_batch_norm")),
          ("optimizer", ("adam", "foreach", "_fused")), ("pack/pad/copy", ("pack", "pad", "copy", "cat", "index")))


def profile(run, device: torch.device, name: str) -> None:
    """Self time of the full step's operators, summed by group (first matching name), as shares."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        run()
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    totals = defaultdict(float)
    for ev in prof.key_averages():
        if ev.device_type != torch.autograd.DeviceType.CPU:  # kernels: counted in the operator that launched them
            continue
        t = getattr(ev, attr, 0.0) or 0.0
        key = ev.key.lower()
        group = next((g for g, words in GROUPS if any(w in key for w in words)), "other")
        totals[group] += t
    whole = sum(totals.values()) or 1.0
    shares = ", ".join(f"{g} {100 * t / whole:.0f} %" for g, t in sorted(totals.items(), key=lambda kv: -kv[1]))
    print(f"{name} profile ({'GPU kernel' if device.type == 'cuda' else 'CPU'} self time): {shares}")


if __name__ == "__main__":
    main()
