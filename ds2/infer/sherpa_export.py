"""`ds2 export --format sherpa-onnx`: a model for sherpa-onnx's offline CTC recogniser (k2-fsa's
runtime for C++, Python, Android, iOS and WebAssembly), as its icefall Zipformer CTC family
(`OfflineRecognizer.from_zipformer_ctc`).

sherpa-onnx computes its own features (kaldi-native-fbank: 25 ms povey windows every 10 ms,
20 Hz to Nyquist - 400 Hz, no dither) and feeds them to the graph. Of its CTC families, icefall's
takes exactly what DS2 trains on: samples in [-1, 1] as Lhotse reads them, so its fbank is
Lhotse's `Fbank` (to 7e-4 on espeak-ng audio, digital silence included), and the graph needs no
change of scale. (WeNet's family scales samples to the int16 range; sherpa-onnx 2.0.1 then gives
frames of digital silence a random energy of about one int16 step, which our models never saw in
training: a quarter of the texts of egs/synth's test set changed. NeMo's takes librosa features.)
The contract:

- inputs `x` (N, T, C) float32 fbank and `x_lens` (N,) int64; outputs `log_probs` (N, T', V),
  V fixed in the graph (sherpa-onnx reads the vocabulary size from it), and `log_probs_lens`;
- `tokens.txt`: "symbol id" per line, `<blk>` at id 0 (its greedy search finds the blank by that
  name), the space as `\u2581`, which it writes as a space;
- sherpa-onnx assumes 4 input frames per output frame for this family, for its timestamps only:
  for a model of another time stride its times are 4/stride of the truth (4/3 for egs/synth's
  stride of 3): `sherpa_timestamps` scales them by the `subsampling_factor` of our metadata.

Only models trained on such features go there: log-mel fbank of 25 ms windows every 10 ms
(`ds2 features`' default), without pitch features. `sherpa_problem` says why another cannot.
"""

from __future__ import annotations

import math

from ds2.text.tokenizer import BLANK

SHERPA_SUBSAMPLING = 4  # the time stride sherpa-onnx assumes for its Zipformer CTC family's timestamps
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


def sherpa_timestamps(timestamps: list[float], subsampling_factor: int) -> list[float]:
    """sherpa-onnx's timestamps of a model of `subsampling_factor` (its metadata) in seconds: it
    counts SHERPA_SUBSAMPLING input frames per output frame for this family."""
    return [t * subsampling_factor / SHERPA_SUBSAMPLING for t in timestamps]


def metadata(vocab_size: int, time_stride: int, comment: str) -> dict[str, str]:
    """The metadata of the graph: what the model is, its vocabulary size and time stride."""
    return {"model_type": "ds2", "vocab_size": str(vocab_size), "subsampling_factor": str(time_stride),
            "comment": comment}


def readme(features: dict, quantized: bool, stride: int) -> str:
    """How to run the folder with sherpa-onnx (README.md beside model.onnx)."""
    rate, bins = int(features["sampling_rate"]), int(features["num_mel_bins"])
    return f"""# A ds2 model for sherpa-onnx

Written by `ds2 export --format sherpa-onnx{' --quantize int8' if quantized else ''}`: `model.onnx`
({'int8 weights, ' if quantized else ''}the contract of sherpa-onnx's icefall Zipformer CTC models) and `tokens.txt`. sherpa-onnx
computes the features itself: {bins} log-mel bins of 25 ms windows every 10 ms at {rate} Hz, as the
model was trained.

Python (`pip install sherpa-onnx`):

```python
import sherpa_onnx, soundfile as sf
recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(
    model="model.onnx", tokens="tokens.txt", num_threads=1, sample_rate={rate}, feature_dim={bins})
samples, rate = sf.read("audio.wav", dtype="float32")  # mono
stream = recognizer.create_stream()
stream.accept_waveform(rate, samples)
recognizer.decode_stream(stream)
print(stream.result.text)
```

Command line: `sherpa-onnx-offline --zipformer-ctc-model=model.onnx --tokens=tokens.txt
--feat-dim={bins} --sample-rate={rate} audio.wav`. Its greedy search is `ds2 transcribe --method
greedy`'s. Its timestamps assume 4 feature frames per output frame: this model has {stride}, so
multiply them by {stride}/4 (the metadata's subsampling_factor).

"""
