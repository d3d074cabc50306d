"""A GRU on packed sequences whose backward pass computes weight gradients in one matmul.

PyTorch's CPU GRU back-propagates through its unrolled steps with autograd, which adds each
step's contribution to the recurrent weight gradient separately (a 3H x H add per step and
direction) and zero-fills buffers per step: on a 2-core CPU that is a third of a DeepSpeech2
training step. This layer computes the same function (`torch.nn.GRU` equations, gate order
r, z, n) with a hand-written backward: per step only the (batch x 3H) gate gradients and one
small matmul; the weight and bias gradients of all steps come from one large matmul at the
end, and the input projection of all steps is one matmul before the loop. Packed sequences
are walked by their `batch_sizes`, so padding costs nothing. The two directions of a
bidirectional layer run at the same time in two threads (PyTorch releases the GIL inside its
ops): their step loops are chains of small ops that one core cannot overlap. Inside a bfloat16
autocast region the large weight-gradient matmuls run in bfloat16, as autocast runs the others.

On GPUs cuDNN's fused GRU is faster, and so is the CPU's without gradients; `RecurrentLayer` uses `packed_gru` for training on CPU only, with
the parameters of its `nn.GRU`, so checkpoints are the same either way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


def _offsets(batch_sizes: list[int]) -> list[int]:
    out, total = [], 0
    for b in batch_sizes:
        out.append(total)
        total += b
    return out


def _previous_rows(batch_sizes: list[int], reverse: bool) -> torch.Tensor:
    """For each packed row, the row of the same sequence one step earlier in the direction of
    the recurrence, or -1 where the sequence starts (its previous hidden state is zero)."""
    sizes = torch.tensor(batch_sizes)
    offsets = torch.cumsum(sizes, 0) - sizes
    step = torch.repeat_interleave(torch.arange(len(sizes)), sizes)  # the time step of each row
    seq = torch.arange(int(sizes.sum())) - offsets[step]  # the sequence of each row
    other = step + 1 if reverse else step - 1
    valid = (other >= 0) & (other < len(sizes))
    other = other.clamp(0, len(sizes) - 1)
    valid &= seq < sizes[other]
    return torch.where(valid, offsets[other] + seq, -1)


def _recurrence(gi, w_hh, b_hh, batch_sizes: list[int], reverse: bool):
    """One direction's forward: gi (N, 3H) input projections -> h (N, H) and what backward needs."""
    hidden = w_hh.shape[1]
    n_rows, batch = gi.shape[0], batch_sizes[0]
    offsets = _offsets(batch_sizes)
    out = gi.new_empty(n_rows, hidden)
    rz = gi.new_empty(n_rows, 2 * hidden)
    cand = gi.new_empty(n_rows, hidden)
    gh = gi.new_empty(n_rows, 3 * hidden)
    w_hh_t = w_hh.t()
    h = gi.new_zeros(batch, hidden)
    steps = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
    for t in steps:
        s, b = offsets[t], batch_sizes[t]
        hp = h[:b]
        g, ghs = gi[s:s + b], gh[s:s + b]
        torch.addmm(b_hh, hp, w_hh_t, out=ghs)
        torch.sigmoid(g[:, : 2 * hidden] + ghs[:, : 2 * hidden], out=rz[s:s + b])
        r, z = rz[s:s + b, :hidden], rz[s:s + b, hidden:]
        torch.tanh(torch.addcmul(g[:, 2 * hidden:], r, ghs[:, 2 * hidden:]), out=cand[s:s + b])
        torch.lerp(cand[s:s + b], hp, z, out=out[s:s + b])
        if reverse:
            h[:b] = out[s:s + b]  # sequences that start later (earlier in time) join with h = 0
        else:
            h = out[s:s + b]
    return out, rz, cand, gh


def _recurrence_backward(grad_out, out, rz, cand, gh, w_hh, batch_sizes: list[int], reverse: bool,
                         mm_dtype: torch.dtype):
    """Gradients (d gi, d w_hh, d b_hh) of one direction from the gradient of its output."""
    hidden = w_hh.shape[1]
    offsets = _offsets(batch_sizes)
    prev = _previous_rows(batch_sizes, reverse)
    h_prev = torch.where((prev >= 0).unsqueeze(1), out[prev.clamp(min=0)], out.new_zeros(()))
    r, z = rz[:, :hidden], rz[:, hidden:]
    # Everything that needs no step-by-step gradient, for all rows at once.
    k_n = (1 - z) * (1 - cand * cand)  # d cand_pre / d h
    k_z = (h_prev - cand) * z * (1 - z)  # d z_pre / d h
    k_r = gh[:, 2 * hidden:] * r * (1 - r)  # d r_pre / d cand_pre
    grad_out = grad_out.contiguous()
    d_gh = torch.empty_like(gh)  # gradient of the recurrent projection (r, z, n)
    d_gin = torch.empty_like(cand)  # gradient of the input projection's n (its r, z: as d_gh's)
    carry = out.new_zeros(batch_sizes[0], hidden)
    steps = range(len(batch_sizes)) if reverse else range(len(batch_sizes) - 1, -1, -1)
    for t in steps:
        s, b = offsets[t], batch_sizes[t]
        rows = slice(s, s + b)
        dh = grad_out[rows] + carry[:b]
        dn = torch.mul(dh, k_n[rows], out=d_gin[rows])
        torch.mul(dn, k_r[rows], out=d_gh[rows, :hidden])
        torch.mul(dh, k_z[rows], out=d_gh[rows, hidden: 2 * hidden])
        torch.mul(dn, r[rows], out=d_gh[rows, 2 * hidden:])
        dhp = torch.addmm(dh * z[rows], d_gh[rows], w_hh)
        if reverse:
            carry = dhp  # the next step (earlier in time) has at most as many sequences
        else:
            carry[:b] = dhp
    d_gi = torch.cat([d_gh[:, : 2 * hidden], d_gin], dim=1)
    d_w_hh = (d_gh.to(mm_dtype).t() @ h_prev.to(mm_dtype)).float()
    return d_gi, d_w_hh, d_gh.sum(0)


_pool: ThreadPoolExecutor | None = None


def _map_directions(fn, args_per_direction: list[tuple]) -> list:
    """fn(*args) for each direction; two directions run in two threads when torch may use two."""
    global _pool
    if len(args_per_direction) == 1 or torch.get_num_threads() < 2:
        return [fn(*args) for args in args_per_direction]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="packed_gru")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per direction: no thread team of each spinning on both cores
    try:
        futures = [_pool.submit(_no_grad, fn, args) for args in args_per_direction]
        return [f.result() for f in futures]
    finally:
        torch.set_num_threads(threads)


def _no_grad(fn, args):
    with torch.no_grad():  # grad mode is per thread: autograd.Function runs its own without it
        return fn(*args)


class _PackedGRUFunction(torch.autograd.Function):
    """All directions of one layer: tensors (gi, w_hh, b_hh) per direction -> (N, directions * H)."""

    @staticmethod
    def forward(ctx, batch_sizes: list[int], mm_dtype: torch.dtype, *tensors):
        directions = [tensors[i:i + 3] for i in range(0, len(tensors), 3)]
        results = _map_directions(_recurrence, [(*d, batch_sizes, bool(k)) for k, d in enumerate(directions)])
        saved = []
        for (out, rz, cand, gh), (_, w_hh, _) in zip(results, directions):
            saved += [out, rz, cand, gh, w_hh]
        ctx.save_for_backward(*saved)
        ctx.batch_sizes, ctx.mm_dtype = batch_sizes, mm_dtype
        outs = [r[0] for r in results]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        hidden = saved[4].shape[1]
        jobs = []
        for k in range(len(saved) // 5):
            jobs.append((grad[:, k * hidden:(k + 1) * hidden].float(), *saved[5 * k: 5 * k + 5], ctx.batch_sizes,
                         bool(k), ctx.mm_dtype))
        # float32 like the forward, even when backward() is called inside an autocast region
        with torch.autocast(grad.device.type, enabled=False):
            results = _map_directions(_recurrence_backward, jobs)
        return (None, None, *[g for r in results for g in r])


def packed_gru(packed: PackedSequence, gru: nn.GRU) -> PackedSequence:
    """`gru(packed)[0]` for a one-layer `nn.GRU`, computed with its parameters by this module."""
    if gru.num_layers != 1 or not gru.bias:
        raise ValueError("packed_gru runs one-layer GRUs with biases")
    device = packed.data.device.type
    mm_dtype = torch.float32
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        mm_dtype = torch.bfloat16
    tensors = []
    for suffix in ("_l0", "_l0_reverse")[: 2 if gru.bidirectional else 1]:
        gi = nn.functional.linear(packed.data, getattr(gru, "weight_ih" + suffix), getattr(gru, "bias_ih" + suffix))
        tensors += [gi.float(), getattr(gru, "weight_hh" + suffix).float(), getattr(gru, "bias_hh" + suffix).float()]
    with torch.autocast(device, enabled=False):  # the recurrence runs in float32
        out = _PackedGRUFunction.apply(packed.batch_sizes.tolist(), mm_dtype, *tensors)
    return packed._replace(data=out)
