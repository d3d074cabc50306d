"""DeepSpeech2: normalisation, conv front-end, recurrent stack, (row conv,) FC, log-softmax."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ds2.model.config import ModelConfig
from ds2.model.layers import ConvFrontEnd, RecurrentLayer, RowConvolution, time_mask


class DeepSpeech2(nn.Module):
    """Features (B, T, F) and their lengths in; CTC log-probabilities (B, T', V) out.

    The global feature mean/std are buffers of the model, so a checkpoint normalises its
    own input wherever it is decoded.
    """

    def __init__(self, cfg: ModelConfig, num_features: int, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.num_features = num_features
        self.vocab_size = vocab_size
        self.register_buffer("feat_mean", torch.zeros(num_features))
        self.register_buffer("feat_std", torch.ones(num_features))
        if cfg.pitch_features >= num_features:
            raise ValueError(f"model.pitch_features {cfg.pitch_features} leaves none of the {num_features} "
                             f"features to the convolutions")
        self.front_end = ConvFrontEnd(num_features, cfg.conv_channels, cfg.conv_kernels,
                                      cfg.conv_strides, cfg.relu_clip, cfg.pitch_features)
        dims = [self.front_end.output_dim] + [cfg.rnn_hidden] * cfg.rnn_layers
        self.rnns = nn.ModuleList(
            RecurrentLayer(dims[i], cfg.rnn_hidden, cfg.rnn_type, cfg.bidirectional,
                           batch_norm=cfg.batch_norm, dropout=cfg.dropout if i > 0 else 0.0)
            for i in range(cfg.rnn_layers))
        self.row_conv = None if cfg.bidirectional else RowConvolution(cfg.rnn_hidden, cfg.lookahead)
        fc, dim = [], cfg.rnn_hidden
        for hidden in cfg.fc_dims:
            fc += [nn.Dropout(cfg.dropout), nn.Linear(dim, hidden), nn.Hardtanh(0.0, cfg.relu_clip)]
            dim = hidden
        fc.append(nn.Linear(dim, vocab_size))
        self.fc = nn.Sequential(*fc)
        self.aux_head = None  # training only: the auxiliary CTC head (ModelConfig.aux_units)
        if cfg.aux_units == "pinyin":
            from ds2.text.pinyin import UNITS

            self.aux_head = nn.Linear(cfg.rnn_hidden, len(UNITS))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for `lengths` input frames."""
        return self.front_end.output_lengths(lengths)

    def normalize(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean/variance-normalised features, zero past each length."""
        mask = time_mask(lengths, feats.shape[1])[:, :, None].to(feats.dtype)
        if self.cfg.feature_norm == "utterance":
            n = lengths.clamp_min(1)[:, None, None].to(feats.dtype)
            mean = (feats * mask).sum(1, keepdim=True) / n
            var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
            return (feats - mean) / (var + 1e-5).sqrt() * mask
        return (feats - self.feat_mean) / self.feat_std * mask

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, aux: bool = False):
        """(log-probs (B, T', V), output lengths); with `aux` (a model with an auxiliary head) also
        the auxiliary head's log-probs (B, T', units), for the training loss."""
        if aux and self.aux_head is None:
            raise ValueError("this model has no auxiliary head (model.aux_units)")
        x = self.normalize(feats, lengths)
        x, lengths = self.front_end(x, lengths)
        frames = x.shape[1]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        aux_log_probs = None
        for i, rnn in enumerate(self.rnns, 1):
            packed = rnn(packed)
            if aux and i == self.cfg.aux_layer:
                hidden, _ = pad_packed_sequence(packed, batch_first=True, total_length=frames)
                aux_log_probs = self.aux_head(hidden).log_softmax(dim=-1)
        x, _ = pad_packed_sequence(packed, batch_first=True, total_length=frames)
        if self.row_conv is not None:
            x = self.row_conv(x)
        if aux:
            return self.fc(x).log_softmax(dim=-1), lengths, aux_log_probs
        return self.fc(x).log_softmax(dim=-1), lengths

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
