"""`ds2 export --format sherpa-onnx`: a model for sherpa-onnx's offline CTC recogniser (k2-fsa's
runtime for C++, Python, Android, iOS and WebAssembly), as its WeNet CTC family.

sherpa-onnx computes its own features (kaldi-native-fbank: 25 ms povey windows every 10 ms,
20 Hz to Nyquist - 400 Hz, no dither) and feeds them to the graph; of its CTC families, WeNet's
is the one whose contract fits DeepSpeech2's (NeMo's takes librosa features; icefall's Zipformer
CTC fixes the time subsampling at 4, where DS2's is its convolutions' time stride):

- inputs `x` (N, T, C) float32 fbank and `x_lens` (N,) int64; outputs `log_probs` (N, T', V)
  and `log_probs_lens` (N,);
- metadata `vocab_size` and `subsampling_factor` (our time stride: sherpa-onnx's timestamps);
- samples on the int16 scale (it sets normalize_samples=False for this family), so its log-mel
  energies are Lhotse's plus 2 ln 32768, floored at ln FLT_EPSILON on that scale. The graph
  subtracts the offset and floors at ln FLT_EPSILON again, which gives Lhotse's `Fbank` (what
  training read) to within 3e-4: every feature exactly where audio is digital silence;
- `tokens.txt`: "symbol id" per line, `<blk>` at id 0 (its greedy search finds the blank by that
  name), the space as `\u2581`, which it writes as a space.

Only models trained on such features go there: log-mel fbank of 25 ms windows every 10 ms
(`ds2 features`' default), without pitch features. `sherpa_problem` says why another cannot.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ds2.text.tokenizer import BLANK

SAMPLE_SCALE_OFFSET = 2 * math.log(32768.0)  # log-energy of int16-scale samples minus that of [-1, 1] ones
LOG_FLT_EPSILON = math.log(torch.finfo(torch.float32).eps)  # the floor of both fbank implementations
WINDOW, FRAME_SHIFT = 0.025, 0.01  # what kaldi-native-fbank computes in sherpa-onnx (not configurable there)
SPACE_SYMBOL = "\u2581"  # sherpa-onnx writes a symbol's leading U+2581 as a space
INPUTS, OUTPUTS = ["x", "x_lens"], ["log_probs", "log_probs_lens"]


def sherpa_problem(features: dict, symbols: list[str]) -> str | None:
    """Why sherpa-onnx cannot run a model of these feature settings and token symbols, or None."""
    kind = features.get("kind")
    if kind != "fbank":
        return (f"it was trained on {kind} features, and sherpa-onnx computes only log-mel fbank: train one on "
                f"`ds2 features --kind fbank` features")
    if features.get("pitch"):
        return ("it was trained on fbank features with pitch, which sherpa-onnx does not compute: train one "
                "without --pitch")
    window, shift = float(features.get("window", 0)), float(features.get("frame_shift", 0))
    if not (math.isclose(window, WINDOW) and math.isclose(shift, FRAME_SHIFT)):
        return (f"it was trained on fbank of {window * 1000:g} ms windows every {shift * 1000:g} ms, and sherpa-onnx "
                f"computes {WINDOW * 1000:g} ms ones every {FRAME_SHIFT * 1000:g} ms: compute the features again with "
                f"`ds2 features` (--window {WINDOW} is its default) and retrain")
    if symbols[0] != BLANK:
        return f"its token 0 is {symbols[0]!r}, not the blank {BLANK}"
    bad = next((s for s in symbols[1:] if s != " " and (not s or any(c.isspace() for c in s))), None)
    if bad is not None:
        return f"its token {bad!r} holds white space, which tokens.txt of sherpa-onnx cannot write"
    return None


def tokens_txt(symbols: list[str]) -> str:
    """sherpa-onnx's tokens.txt of our token symbols (id 0 the blank, `<blk>`)."""
    return "".join(f"{SPACE_SYMBOL if s == ' ' else s} {i}\n" for i, s in enumerate(symbols))


class SherpaOnnxModel(nn.Module):
    """`offline` (ds2.infer.export.OfflineModel) behind sherpa-onnx's WeNet CTC contract: fbank of
    int16-scale samples (N, T, C) and lengths in, log-probs and their lengths out."""

    def __init__(self, offline: nn.Module):
        super().__init__()
        self.offline = offline

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor):
        feats = (x - SAMPLE_SCALE_OFFSET).clamp_min(LOG_FLT_EPSILON)  # Lhotse's fbank of [-1, 1] samples
        return self.offline(feats, x_lens)


def metadata(vocab_size: int, time_stride: int, comment: str) -> dict[str, str]:
    """The model metadata sherpa-onnx's WeNet CTC family reads (vocab_size, subsampling_factor), and ours."""
    return {"model_type": "ds2", "vocab_size": str(vocab_size), "subsampling_factor": str(time_stride),
            "comment": comment}


def readme(features: dict, quantized: bool) -> str:
    """How to run the folder with sherpa-onnx (README.md beside model.onnx)."""
    rate, bins = int(features["sampling_rate"]), int(features["num_mel_bins"])
    return f"""# A ds2 model for sherpa-onnx

Written by `ds2 export --format sherpa-onnx`{' --quantize int8' if quantized else ''}: `model.onnx`
({'int8 weights, ' if quantized else ''}sherpa-onnx's WeNet CTC contract) and `tokens.txt`. sherpa-onnx
computes the features itself: {bins} log-mel bins of 25 ms windows every 10 ms at {rate} Hz, as the
model was trained.

Python (`pip install sherpa-onnx`):

```python
import sherpa_onnx, soundfile as sf
recognizer = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(
    model="model.onnx", tokens="tokens.txt", num_threads=1, sample_rate={rate}, feature_dim={bins})
samples, rate = sf.read("audio.wav", dtype="float32")  # mono
stream = recognizer.create_stream()
stream.accept_waveform(rate, samples)
recognizer.decode_stream(stream)
print(stream.result.text)
```

Command line: `sherpa-onnx-offline --wenet-ctc-model=model.onnx --tokens=tokens.txt
--feat-dim={bins} --sample-rate={rate} audio.wav`. Greedy search only (sherpa-onnx's, as
`ds2 transcribe --method greedy`); n-gram LMs and HLG graphs stay with `ds2 transcribe`.
"""
