"""The typed configuration of DeepSpeech2; variants are YAML files in `egs/*/conf/`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    """Sizes of every part of DeepSpeech2 (Amodei et al. 2016, section 3)."""

    # Feature normalisation: "global" (train-set mean/std stored in the model) or "utterance"
    # (each utterance's own mean/std over its valid frames, which also removes speaker and
    # channel offsets, but needs the whole utterance: use "global" for streaming models).
    feature_norm: str = "utterance"
    # Convolutional front-end over (time, frequency), one entry per layer (1-3 layers).
    conv_channels: list[int] = field(default_factory=lambda: [32, 32])  # output channels
    conv_kernels: list[list[int]] = field(default_factory=lambda: [[11, 41], [11, 21]])  # (time, freq)
    conv_strides: list[list[int]] = field(default_factory=lambda: [[2, 2], [1, 2]])  # (time, freq)
    # The last N input features are pitch features (`ds2 features --pitch`: 2), which go around the
    # 2-D convolutions through convolutions over time alone; 0: every feature is a spectrum bin.
    pitch_features: int = 0
    # Recurrent layers.
    rnn_type: str = "gru"  # "rnn" (simple, ReLU), "gru" or "lstm"
    rnn_layers: int = 5  # 1-7 in the paper
    rnn_hidden: int = 512  # units per direction; directions are summed, as in the paper
    bidirectional: bool = True  # False: forward-only layers followed by a row convolution
    batch_norm: bool = True  # sequence-wise batch norm on each recurrent layer's input (DS2 section 3.2); False: none
    lookahead: int = 20  # row convolution: future frames seen (tau); forward-only models only
    # Fully connected layers between the last recurrent layer and the softmax.
    fc_dims: list[int] = field(default_factory=list)  # hidden sizes; [] goes straight to the softmax
    dropout: float = 0.0  # dropout on the input of every recurrent layer but the first, and of the FC layers
    relu_clip: float = 20.0  # the clipped ReLU min(max(x, 0), clip) of the paper
    # An auxiliary CTC head for training only (decoding never reads it): "pinyin" predicts the
    # pinyin units of Mandarin transcripts (ds2/text/pinyin.py: initials and toned finals) from the
    # output of recurrent layer `aux_layer` (1 is the first), weighted by train.aux_weight; "" none.
    aux_units: str = ""
    aux_layer: int = 2  # the recurrent layer (1 is the first) whose output feeds the aux_units head

    def __post_init__(self):
        """Raise ValueError naming the first option out of its range (also run after overrides)."""
        n = len(self.conv_channels)
        if not 1 <= n <= 3 or len(self.conv_kernels) != n or len(self.conv_strides) != n:
            raise ValueError("model.conv_channels, conv_kernels and conv_strides need 1-3 entries each, equally many")
        if any(c < 1 for c in self.conv_channels):
            raise ValueError(f"model.conv_channels must be positive, not {self.conv_channels}")
        for name in ("conv_kernels", "conv_strides"):
            pairs = getattr(self, name)
            if any(not isinstance(p, (list, tuple)) or len(p) != 2 or min(p) < 1 for p in pairs):
                raise ValueError(f"model.{name} must hold [time, freq] pairs of positive integers, not {pairs}")
        if self.pitch_features < 0:
            raise ValueError(f"model.pitch_features must be >= 0, not {self.pitch_features}")
        if self.feature_norm not in ("global", "utterance"):
            raise ValueError(f"model.feature_norm must be global or utterance, not {self.feature_norm!r}")
        if self.rnn_type not in ("rnn", "gru", "lstm"):
            raise ValueError(f"model.rnn_type must be rnn, gru or lstm, not {self.rnn_type!r}")
        if self.rnn_layers < 1:
            raise ValueError(f"model.rnn_layers must be at least 1, not {self.rnn_layers}")
        if self.rnn_hidden < 1:
            raise ValueError(f"model.rnn_hidden must be at least 1, not {self.rnn_hidden}")
        if self.lookahead < 0:
            raise ValueError(f"model.lookahead must be >= 0, not {self.lookahead}")
        if any(d < 1 for d in self.fc_dims):
            raise ValueError(f"model.fc_dims must be positive, not {self.fc_dims}")
        if not 0 <= self.dropout < 1:  # also false for nan
            raise ValueError(f"model.dropout must be >= 0 and < 1, not {self.dropout}")
        if not 0 < self.relu_clip < float("inf"):
            raise ValueError(f"model.relu_clip must be finite and > 0, not {self.relu_clip}")
        if self.aux_units not in ("", "pinyin"):
            raise ValueError(f"model.aux_units must be '' (none) or pinyin, not {self.aux_units!r}")
        if self.aux_units and not 1 <= self.aux_layer <= self.rnn_layers:
            raise ValueError(f"model.aux_layer must be a recurrent layer, 1 to {self.rnn_layers}, not {self.aux_layer}")

    @property
    def time_stride(self) -> int:
        """Input frames per output frame."""
        stride = 1
        for s in self.conv_strides:
            stride *= s[0]
        return stride
