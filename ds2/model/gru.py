"""A GRU on packed sequences whose backward pass computes weight gradients in one matmul.

PyTorch's CPU GRU back-propagates through its unrolled steps with autograd, which adds each
step's contribution to the recurrent weight gradient separately (a 3H x H add per step and
direction) and zero-fills buffers per step: on a 2-core CPU that is a third of a DeepSpeech2
training step. This layer computes the same function (`torch.nn.GRU` equations, gate order
r, z, n) with a hand-written backward: per step only the (batch x 3H) gate gradients and one
small matmul; the weight and bias gradients of all steps come from one large matmul at the
end, and the input projection of all steps is one matmul before the loop. Packed sequences
are walked by their `batch_sizes`, so padding costs nothing.

On GPUs cuDNN's fused GRU is faster; `RecurrentLayer` uses `packed_gru` on CPU only, with
the parameters of its `nn.GRU`, so checkpoints are the same either way.
"""

from __future__ import annotations

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


class _PackedGRUFunction(torch.autograd.Function):
    """Recurrence of one direction: gi (N, 3H) input projections -> h (N, H), packed rows."""

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh, batch_sizes: list[int], reverse: bool):
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
        ctx.save_for_backward(out, rz, cand, gh, w_hh)
        ctx.batch_sizes, ctx.reverse = batch_sizes, reverse
        return out

    @staticmethod
    def backward(ctx, grad_out):
        # float32 like the forward, even when backward() is called inside an autocast region
        with torch.autocast(grad_out.device.type, enabled=False):
            return _PackedGRUFunction._backward(ctx, grad_out.float())

    @staticmethod
    def _backward(ctx, grad_out):
        out, rz, cand, gh, w_hh = ctx.saved_tensors
        batch_sizes, reverse = ctx.batch_sizes, ctx.reverse
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
        d_gi = torch.empty_like(gh)
        d_ghn = torch.empty_like(cand)
        w_rz, w_n = w_hh[: 2 * hidden], w_hh[2 * hidden:]
        carry = out.new_zeros(batch_sizes[0], hidden)
        steps = range(len(batch_sizes)) if reverse else range(len(batch_sizes) - 1, -1, -1)
        for t in steps:
            s, b = offsets[t], batch_sizes[t]
            rows = slice(s, s + b)
            dh = grad_out[rows] + carry[:b]
            dn = torch.mul(dh, k_n[rows], out=d_gi[rows, 2 * hidden:])
            torch.mul(dn, k_r[rows], out=d_gi[rows, :hidden])
            torch.mul(dh, k_z[rows], out=d_gi[rows, hidden: 2 * hidden])
            torch.mul(dn, r[rows], out=d_ghn[rows])
            dhp = torch.addmm(dh * z[rows], d_gi[rows, : 2 * hidden], w_rz)
            dhp.addmm_(d_ghn[rows], w_n)
            if reverse:
                carry = dhp  # the next step (earlier in time) has at most as many sequences
            else:
                carry[:b] = dhp
        d_gh = torch.cat([d_gi[:, : 2 * hidden], d_ghn], dim=1)
        d_w_hh = d_gh.t() @ h_prev
        d_b_hh = d_gh.sum(0)
        return d_gi, d_w_hh, d_b_hh, None, None


def packed_gru(packed: PackedSequence, gru: nn.GRU) -> PackedSequence:
    """`gru(packed)[0]` for a one-layer `nn.GRU`, computed with its parameters by this module."""
    if gru.num_layers != 1 or not gru.bias:
        raise ValueError("packed_gru runs one-layer GRUs with biases")
    batch_sizes = packed.batch_sizes.tolist()
    outs = []
    for suffix, reverse in (("_l0", False), ("_l0_reverse", True))[: 2 if gru.bidirectional else 1]:
        gi = nn.functional.linear(packed.data, getattr(gru, "weight_ih" + suffix), getattr(gru, "bias_ih" + suffix))
        w_hh, b_hh = getattr(gru, "weight_hh" + suffix), getattr(gru, "bias_hh" + suffix)
        with torch.autocast(packed.data.device.type, enabled=False):  # the recurrence runs in float32
            outs.append(_PackedGRUFunction.apply(gi.float(), w_hh.float(), b_hh.float(), batch_sizes, reverse))
    return packed._replace(data=torch.cat(outs, dim=1) if len(outs) > 1 else outs[0])
