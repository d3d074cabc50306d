"""The layers of Deep Speech 2: convolutional front-end, sequence-wise batch norm,
recurrent layers over packed sequences, and the row convolution."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ds2.model.gru import packed_gru


def conv_output_length(lengths: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Frames out of a convolution padded by kernel // 2 on both sides."""
    pad = kernel // 2
    return torch.div(lengths + 2 * pad - kernel, stride, rounding_mode="floor") + 1


def time_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) boolean mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Sum of `x` over the processes of a distributed run (with its gradient), else `x`."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.nn.functional import all_reduce

        with warnings.catch_warnings():  # deprecated for a private successor (_functional_collectives)
            warnings.simplefilter("ignore", FutureWarning)
            return all_reduce(x)
    return x


def valid_frames_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, channel_dim: int = 1,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Batch norm of `x` with `bn`'s parameters, whose statistics come from the valid frames
    only: where `mask` (broadcastable to `x`, 1 on valid frames) is 1, or all of `x` without a
    mask. In a distributed run the statistics are those of the global batch (summed over all
    processes, like SyncBatchNorm), so one process with a batch and N processes with its parts
    compute the same function. Masked sums rather than gathered rows: no host synchronisation."""
    xf = x.float()
    if bn.training:
        dims = [d for d in range(x.dim()) if d != channel_dim]
        xm = xf if mask is None else xf * mask
        c = x.shape[channel_dim]
        if mask is None:
            count = xf.new_tensor([x.numel() // c])
        else:  # valid entries of one channel: the mask's ones times the entries each stands for
            count = mask.float().sum().reshape(1) * (x.numel() // mask.numel() // c)
        moments = _sum_over_ranks(torch.cat([xm.sum(dims), (xm * xf).sum(dims), count]))
        count = moments[2 * c]
        mean = moments[:c] / count
        var = (moments[c: 2 * c] / count - mean * mean).clamp_min(0.0)
        with torch.no_grad():
            m = bn.momentum
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            bn.running_var.mul_(1 - m).add_(var.detach() * (count / (count - 1).clamp_min(1)), alpha=m)
            bn.num_batches_tracked.add_(1)
    else:
        mean, var = bn.running_mean, bn.running_var
    scale = bn.weight * torch.rsqrt(var + bn.eps)
    shape = [1] * x.dim()
    shape[channel_dim] = -1
    y = xf * scale.view(shape) + (bn.bias - mean * scale).view(shape)
    return y.to(x.dtype)


class ConvFrontEnd(nn.Module):
    """2-D convolutions over (time, frequency), each with batch norm and a clipped ReLU.

    Batch norm statistics come from valid frames only, and frames past each utterance's
    length are zeroed after every layer, so a valid frame's output does not depend on the
    padding of the batch it is in.

    The last `pitch_features` input features (pitch, `ds2 features --pitch`) are not a spectrum:
    they go around the 2-D convolutions, through convolutions over time alone with the same time
    kernels and strides (`pitch_channels` channels), whose output joins the 2-D convolutions'.
    """

    def __init__(self, num_features: int, channels, kernels, strides, relu_clip: float, pitch_features: int = 0,
                 pitch_channels: int = 16):
        super().__init__()
        self.kernels = [tuple(k) for k in kernels]
        self.strides = [tuple(s) for s in strides]
        self.pitch_features = pitch_features
        layers, pitch_layers, in_ch, pitch_in, freq = [], [], 1, pitch_features, num_features - pitch_features
        for ch, (kt, kf), (st, sf) in zip(channels, self.kernels, self.strides):
            layers.append(nn.ModuleDict({
                "conv": nn.Conv2d(in_ch, ch, (kt, kf), (st, sf), padding=(kt // 2, kf // 2), bias=False),
                "bn": nn.BatchNorm2d(ch),
            }))
            if pitch_features:  # (B, C, T, 1): the features as channels, one "frequency"
                pitch_layers.append(nn.ModuleDict({
                    "conv": nn.Conv2d(pitch_in, pitch_channels, (kt, 1), (st, 1), padding=(kt // 2, 0), bias=False),
                    "bn": nn.BatchNorm2d(pitch_channels),
                }))
                pitch_in = pitch_channels
            in_ch = ch
            freq = int(conv_output_length(torch.tensor(freq), kf, sf))
        self.layers = nn.ModuleList(layers)
        self.pitch_layers = nn.ModuleList(pitch_layers)
        self.act = nn.Hardtanh(0.0, relu_clip)
        self.output_dim = in_ch * freq + (pitch_channels if pitch_features else 0)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for (kt, _), (st, _) in zip(self.kernels, self.strides):
            lengths = conv_output_length(lengths, kt, st)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x: (B, T, F) -> (B, T', C*F' [+ pitch_channels]), lengths (B,) -> (B,)."""
        pitch = None
        if self.pitch_features:
            x, pitch = x[..., : -self.pitch_features], x[..., -self.pitch_features:].transpose(1, 2).unsqueeze(3)
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for i, (layer, (kt, _), (st, _)) in enumerate(zip(self.layers, self.kernels, self.strides)):
            x = layer["conv"](x)
            lengths = conv_output_length(lengths, kt, st)
            mask = time_mask(lengths, x.shape[2])[:, None, :, None].to(x.dtype)  # (B, 1, T, 1)
            x = self.act(valid_frames_batch_norm(layer["bn"], x, channel_dim=1, mask=mask)) * mask
            if pitch is not None:
                p = self.pitch_layers[i]
                pitch = self.act(valid_frames_batch_norm(p["bn"], p["conv"](pitch), channel_dim=1, mask=mask)) * mask
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
        if pitch is not None:
            x = torch.cat([x, pitch.squeeze(3).transpose(1, 2)], dim=2)
        return x, lengths


class SequenceBatchNorm(nn.BatchNorm1d):
    """Sequence-wise batch norm (DS2 section 3.2): statistics over every valid frame of the
    minibatch. Applied to a PackedSequence's `.data`, which holds exactly the valid frames,
    so padding never enters the statistics."""

    def forward(self, packed: PackedSequence) -> PackedSequence:  # type: ignore[override]
        return packed._replace(data=valid_frames_batch_norm(self, packed.data, channel_dim=1))


_RNN = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentLayer(nn.Module):
    """Batch norm on the non-recurrent input, then one fused RNN/GRU/LSTM layer.

    Bidirectional outputs are summed (as in the paper), so every layer outputs `hidden`.
    """

    def __init__(self, input_dim: int, hidden: int, rnn_type: str, bidirectional: bool,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.bn = SequenceBatchNorm(input_dim) if batch_norm else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        kwargs = {"nonlinearity": "relu"} if rnn_type == "rnn" else {}
        self.rnn = _RNN[rnn_type](input_dim, hidden, bidirectional=bidirectional, **kwargs)
        self.hidden = hidden
        self.bidirectional = bidirectional

    def forward(self, packed: PackedSequence) -> PackedSequence:
        if self.dropout is not None:
            packed = packed._replace(data=self.dropout(packed.data))
        if self.bn is not None:
            packed = self.bn(packed)
        if isinstance(self.rnn, nn.GRU) and not packed.data.is_cuda and torch.is_grad_enabled():
            # same function, 1.5x faster training on CPU; without gradients (decoding) the fused
            # nn.GRU is 1.4x faster (bench/transcribe.py's model, one thread)
            out = packed_gru(packed, self.rnn)
        else:
            out, _ = self.rnn(packed)
        if self.bidirectional:
            out = out._replace(data=out.data[:, : self.hidden] + out.data[:, self.hidden:])
        return out


class RowConvolution(nn.Module):
    """Lookahead convolution (DS2 section 3.5): r_t = sum_{j=0..tau} W_j * h_{t+j}, per feature.

    Lets a forward-only model see `tau` future frames, so it streams with bounded latency.
    """

    def __init__(self, dim: int, lookahead: int):
        super().__init__()
        self.lookahead = lookahead
        self.conv = nn.Conv1d(dim, dim, kernel_size=lookahead + 1, groups=dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) with zeros past each length -> (B, T, D)."""
        x = nn.functional.pad(x.transpose(1, 2), (0, self.lookahead))
        return self.conv(x).transpose(1, 2)
