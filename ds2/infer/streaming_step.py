"""One step of a forward-only DeepSpeech2 over the feature frames that arrived, with all its
state as tensors: what `ds2.infer.stream.StreamingRecognizer` drives, and what `ds2 export`
writes to ONNX / TorchScript for streaming models (state in, state out).

Each convolution keeps the input frames its next outputs still need (at first its left zero
padding), the recurrent layers their hidden states, and the row convolution its last
`lookahead` inputs (at first zeros: its first `lookahead` outputs belong to no frame and are
dropped by the caller). A frame counter per layer lets the last step, given the utterance's
number of frames in `valid_until`, zero what lies past the end exactly as the whole-utterance
forward pass pads it; until then `valid_until` is larger than any count (ds2.infer.stream.NOT_FINAL).
"""

from __future__ import annotations

import torch
from torch import nn

from ds2.model import DeepSpeech2
from ds2.model.layers import conv_output_length, valid_frames_batch_norm


def streaming_problem(cfg) -> str | None:
    """Why a model of ModelConfig `cfg` cannot stream, or None when it can."""
    if cfg.bidirectional:
        return "it is bidirectional (its backward layers need the whole utterance): train a forward-only one, " \
               "e.g. egs/synth/conf/ds2_streaming.yaml"
    if cfg.pitch_features:
        return "its pitch features go around the 2-D convolutions (model.pitch_features), which the " \
               "streaming step does not implement"
    if cfg.feature_norm != "global":
        return "it normalises each utterance by its own statistics (model.feature_norm: utterance), which " \
               "needs the whole utterance: train with model.feature_norm: global"
    return None


class StreamingStep(nn.Module):
    """forward(feats (B, N, F), valid_until (B,) int64, *state) -> (log_probs (B, n, V), *state):
    B streams at once, each with its own state and end (`ds2.infer.stream.state_batch_dim` of each
    state tensor's name says along which dimension the streams are stacked)."""

    def __init__(self, model: DeepSpeech2):
        super().__init__()
        problem = streaming_problem(model.cfg)
        if problem:
            raise ValueError(f"this model cannot stream: {problem}")
        self.model = model.eval()
        fe = model.front_end
        self.geometry = [(kt, st, kt // 2) for (kt, _), (st, _) in zip(fe.kernels, fe.strides)]
        self.lstm = model.cfg.rnn_type == "lstm"

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Zero state of `batch` streams: per conv layer its left padding and an output counter; per
        recurrent layer its hidden state (LSTM: and cell); the feature and recurrent frame counters;
        the row convolution's inputs."""
        m, state = self.model, []
        channels, freq = 1, m.num_features
        for layer, (kt, st, pad) in zip(m.front_end.layers, self.geometry):
            conv = layer["conv"]
            state += [torch.zeros(batch, channels, pad, freq), torch.zeros(batch, dtype=torch.long)]
            channels = conv.out_channels
            freq = int(conv_output_length(torch.tensor(freq), conv.kernel_size[1], conv.stride[1]))
        for rnn in m.rnns:
            hidden = torch.zeros(1, batch, rnn.hidden)
            state += [hidden, hidden.clone()] if self.lstm else [hidden]
        state.append(torch.zeros(batch, dtype=torch.long))  # feature frames seen
        state.append(torch.zeros(batch, dtype=torch.long))  # recurrent frames seen
        if m.row_conv is not None:
            state.append(torch.zeros(batch, m.cfg.rnn_hidden, m.row_conv.lookahead))
        return state

    def state_names(self) -> list[str]:
        names = []
        for i in range(len(self.geometry)):
            names += [f"conv{i}_cache", f"conv{i}_count"]
        for i in range(len(self.model.rnns)):
            names += [f"rnn{i}_h", f"rnn{i}_c"] if self.lstm else [f"rnn{i}_h"]
        names += ["feature_count", "rnn_count"]
        if self.model.row_conv is not None:
            names.append("row_conv_cache")
        return names

    def forward(self, feats: torch.Tensor, valid_until: torch.Tensor, *state: torch.Tensor):
        m = self.model
        state = list(state)
        new_state = []
        n_conv = len(self.geometry)
        conv_state = state[: 2 * n_conv]
        k = 2 * n_conv
        n_h = len(m.rnns) * (2 if self.lstm else 1)
        hidden, k = state[k: k + n_h], k + n_h
        feature_count, rnn_count = state[k], state[k + 1]
        row_cache = state[k + 2] if m.row_conv is not None else None

        # global normalisation; frames at or past the end are zeros, as padding is in a batch
        index = feature_count[:, None] + torch.arange(feats.shape[1])[None, :]  # (B, N)
        x = (feats - m.feat_mean) / m.feat_std * (index < valid_until[:, None]).to(feats.dtype)[:, :, None]
        x = x.unsqueeze(1)  # (B, 1, N, F)
        length = valid_until
        for i, (layer, (kt, st, pad)) in enumerate(zip(m.front_end.layers, self.geometry)):
            cache, count = conv_state[2 * i], conv_state[2 * i + 1]
            buf = torch.cat([cache, x], dim=2)
            conv = layer["conv"]
            y = nn.functional.conv2d(buf, conv.weight, None, conv.stride, (0, conv.padding[1]))
            n = y.shape[2]
            new_state += [buf[:, :, n * st:], count + n]
            length = conv_output_length(length, kt, st)
            valid = ((count[:, None] + torch.arange(n)[None, :]) < length[:, None]).to(y.dtype)[:, None, :, None]
            x = m.front_end.act(valid_frames_batch_norm(layer["bn"], y, channel_dim=1)) * valid
        b, c, t, f = x.shape
        x = x.permute(2, 0, 1, 3).reshape(t, b, c * f)  # (T, B, D): nn.GRU's time-major layout
        j = 0
        for rnn in m.rnns:
            x = valid_frames_batch_norm(rnn.bn, x, channel_dim=2) if rnn.bn is not None else x
            if self.lstm:
                x, (h, c_) = rnn.rnn(x, (hidden[j], hidden[j + 1]))
                new_state += [h, c_]
                j += 2
            else:
                x, h = rnn.rnn(x, hidden[j])
                new_state.append(h)
                j += 1
        valid = ((rnn_count[None, :] + torch.arange(t)[:, None]) < length[None, :]).to(x.dtype)[:, :, None]
        x = (x * valid).permute(1, 0, 2)  # (B, T, H), zeros past the end as pad_packed_sequence gives
        new_state += [feature_count + feats.shape[1], rnn_count + t]
        if row_cache is not None:
            buf = torch.cat([row_cache, x.transpose(1, 2)], dim=2)  # (B, H, lookahead + T)
            x = m.row_conv.conv(buf).transpose(1, 2)
            new_state.append(buf[:, :, t:])
        return (m.fc(x).log_softmax(dim=-1), *new_state)
