"""`ds2 export`: a checkpoint's model as ONNX (run by onnxruntime, without torch), as a model of
sherpa-onnx (`ds2.infer.sherpa_export`), or as TorchScript; ONNX graphs optionally with int8
weights (`ds2.infer.quantize`).

Writes into the output folder:

- `model.onnx` / `model.pt`: `OfflineModel`, the whole-utterance forward pass of DeepSpeech2
  (features (B, T, F) float32 and their lengths (B,) int64 in; log-probs (B, T', V) and output
  lengths (B,) out), batch and time dynamic;
- for streaming models (forward-only, global feature normalisation) also `stream_step.onnx` /
  `stream_step.pt`: `ds2.infer.streaming_step.StreamingStep`, one step of B streams with their
  state as tensors (feats (B, N, F), valid_until (B,), the state in; log-probs (B, n, V) and the
  new state out), batch dynamic;
- `ds2_model.json`: what a runtime needs besides the graphs: the tokenizer, the feature settings,
  the model config, the input/output names, and the streaming step's state (names, initial shapes
  and dtypes). `ds2.infer.onnx_model.OnnxAcousticModel` reads the ONNX export without torch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from ds2 import __version__
from ds2.atomic import write_atomic, write_text_atomic
from ds2.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
from ds2.config import config_to_dict
from ds2.infer.acoustic import checkpoint_features
from ds2.infer import ModelError
from ds2.infer.onnx_model import MANIFEST
from ds2.infer.quantize import quantize_int8, set_metadata
from ds2.infer.sherpa_export import INPUTS as SHERPA_INPUTS, OUTPUTS as SHERPA_OUTPUTS
from ds2.infer.sherpa_export import metadata as sherpa_metadata, readme as sherpa_readme, sherpa_problem, tokens_txt
from ds2.infer.stream import NOT_FINAL, StreamGeometry, state_batch_dim
from ds2.infer.streaming_step import StreamingStep, streaming_problem
from ds2.model import DeepSpeech2
from ds2.model.layers import time_mask, valid_frames_batch_norm

FORMATS = ("onnx", "sherpa-onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "sherpa-onnx": ".onnx", "torchscript": ".pt"}
QUANTIZE = ("int8",)
OPSET = 17
OFFLINE_INPUTS = ["feats", "lengths"]
OFFLINE_OUTPUTS = ["log_probs", "out_lengths"]
STREAM_INPUTS = ["feats", "valid_until"]  # then the state
STREAM_OUTPUTS = ["log_probs"]  # then the new state, "<name>_out"

def _run_direction(rnn: nn.RNNBase, x: torch.Tensor, suffix: str) -> torch.Tensor:
    """One direction of the one-layer `rnn` (weights `*_l0{suffix}`, the module's own) over
    time-major `x` (T, B, D) from zero state: (T, B, H)."""
    params = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
              if hasattr(rnn, f"{name}_l0{suffix}")]
    h0 = x.new_zeros(1, x.shape[1], rnn.hidden_size)
    args = (params, rnn.bias, 1, 0.0, False, False, False)  # layers, dropout, train, bidirectional, batch_first
    if isinstance(rnn, nn.LSTM):
        return torch.lstm(x, (h0, h0), *args)[0]
    if isinstance(rnn, nn.GRU):
        return torch.gru(x, h0, *args)[0]
    fn = torch.rnn_relu if rnn.nonlinearity == "relu" else torch.rnn_tanh
    return fn(x, h0, *args)[0]


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x` (T, B, D) with each sequence's first lengths[b] frames in reverse order; the padding
    after them stays where it is. Its own inverse."""
    t = torch.arange(x.shape[0], device=x.device)[:, None]  # (T, 1)
    index = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return x.gather(0, index[:, :, None].expand(x.shape))


class OfflineModel(nn.Module):
    """DeepSpeech2's forward pass in eval mode without PackedSequence, for export:
    forward(feats (B, T, F), lengths (B,)) -> (log_probs (B, T', V), out_lengths (B,)), the same
    function as `DeepSpeech2.forward`, padding frames included (the recurrent layers' outputs are
    zero past each length, as pad_packed_sequence leaves them). Forward-only layers run on the
    padded batch (the padding comes after the valid frames); a bidirectional layer runs its backward
    direction on each sequence reversed within its own length. Uses `model`'s own parameters."""

    def __init__(self, model: DeepSpeech2):
        super().__init__()
        self.model = model.eval()

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        m = self.model
        x = m.normalize(feats, lengths)
        x, lengths = m.front_end(x, lengths)  # zero past each length
        x = x.transpose(0, 1)  # (T', B, D), the recurrent layers' time-major layout
        mask = time_mask(lengths, x.shape[0]).transpose(0, 1)[:, :, None].to(x.dtype)  # (T', B, 1)
        for layer in m.rnns:
            if layer.bn is not None:  # sequence-wise batch norm in eval: a per-feature affine map
                x = valid_frames_batch_norm(layer.bn, x, channel_dim=2)
            if layer.bidirectional:
                forward = _run_direction(layer.rnn, x, "")
                backward = reverse_within_lengths(
                    _run_direction(layer.rnn, reverse_within_lengths(x, lengths), "_reverse"), lengths)
                x = forward + backward
            else:  # padding comes after the valid frames: they do not see it
                x = layer.rnn(x)[0]
            x = x * mask  # zeros past each length, as pad_packed_sequence gives
        x = x.transpose(0, 1)
        if m.row_conv is not None:
            x = m.row_conv(x)
        return m.fc(x).log_softmax(dim=-1), lengths


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def default_output_dir(model: str | Path, format: str, quantize: str | None = None) -> Path:
    """EXP/export_<format>[_<quantize>] for an experiment folder, else that beside the checkpoint file."""
    p = Path(model)
    return (p.parent if p.is_file() else p) / f"export_{format}{'_' + quantize if quantize else ''}"


def _example_batch(model: DeepSpeech2, frames: tuple[int, ...] = (40, 23)):
    lengths = torch.tensor(frames, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    return torch.randn(len(frames), max(frames), model.num_features, generator=g), lengths


def _export_graph(module: nn.Module, args: tuple, path: Path, format: str, input_names, output_names,
                  dynamic_axes: dict, quantize: str | None = None, metadata: dict[str, str] | None = None) -> None:
    """`module` traced with `args` into `path`: TorchScript, or an ONNX graph (its weights in int8 with
    `quantize`, and `metadata` in its metadata_props)."""
    with warnings.catch_warnings():
        # nn.RNNBase's input checks (the trace keeps their outcome: sizes the model fixes anyway)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn")
        # torch 2.9+ deprecates torch.jit.trace and the TorchScript-based ONNX exporter, the ones that work here
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*(torch\.jit\.trace|legacy Torch"
                                r"Script-based ONNX export|The feature will be removed)")
        if format == "onnx":
            # the legacy exporter's notes on Slice ops it did not fold, and its batch-size caution about
            # RNN initial states, which does not apply: they are built from the input's batch size
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            _onnx_export(module, args, path, input_names, output_names, dynamic_axes)
            if quantize:
                quantize_int8(path)
            if metadata:
                set_metadata(path, metadata)
        else:
            traced = torch.jit.trace(module, args, check_trace=False)
            write_atomic(path, lambda tmp: traced.save(str(tmp)))


def _onnx_export(module, args, path, input_names, output_names, dynamic_axes):
    # the legacy (TorchScript-based) exporter: torch.export's (dynamo=True) fails on nn.GRU here
    write_atomic(path, lambda tmp: torch.onnx.export(
        module, args, str(tmp), input_names=input_names, output_names=output_names,
        dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True))


def export_model(model: str | Path, out_dir: str | Path | None = None, format: str = "onnx",
                 quantize: str | None = None) -> Path:
    """Export the checkpoint of `model` (an experiment folder or a checkpoint file, as
    `ds2.checkpoint.find_checkpoint` takes it) in `format` ("onnx", "sherpa-onnx" or "torchscript"),
    with `quantize` "int8" the ONNX graphs' weights in int8 (`ds2.infer.quantize`), into `out_dir`
    (default: `default_output_dir`); returns `out_dir`. Raises FileNotFoundError,
    ds2.checkpoint.CheckpointError or ds2.infer.acoustic.ModelError (one line each), before writing
    anything when the model cannot be exported as asked."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}: choose {' or '.join(FORMATS)}")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"unknown quantization {quantize!r}: choose {' or '.join(QUANTIZE)}")
    if quantize and format == "torchscript":
        raise ModelError(f"--quantize {quantize} is for ONNX graphs (--format onnx or sherpa-onnx), not TorchScript")
    path = find_checkpoint(model)
    ckpt = load_checkpoint(path)
    features = checkpoint_features(ckpt, path)
    net, tokenizer, cfg = model_from_checkpoint(ckpt)
    if format == "sherpa-onnx":
        problem = sherpa_problem(features, tokenizer.symbols)
        if problem:
            raise ModelError(f"{path} cannot be exported for sherpa-onnx: {problem}")
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(model, format, quantize)
    out_dir.mkdir(parents=True, exist_ok=True)
    if format == "sherpa-onnx":
        _export_sherpa_onnx(net, tokenizer, cfg, features, path, out_dir, quantize)
        return out_dir
    suffix = SUFFIX[format]

    with torch.no_grad():
        offline = OfflineModel(net).eval()
        _export_graph(offline, _example_batch(net), out_dir / f"model{suffix}", format, OFFLINE_INPUTS,
                      OFFLINE_OUTPUTS, {"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
                                        "log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"}},
                      quantize)
        problem = streaming_problem(cfg.model)
        manifest = {
            "ds2_version": __version__, "format": format, "checkpoint": str(path),
            "model_file": f"model{suffix}", "opset": OPSET if format == "onnx" else None, "quantize": quantize,
            "tokenizer": tokenizer.to_dict(), "features": features, "model": config_to_dict(cfg)["model"],
            "num_features": int(net.num_features), "vocab_size": int(net.vocab_size),
            "inputs": OFFLINE_INPUTS, "outputs": OFFLINE_OUTPUTS,
            "streaming": problem is None, "streaming_problem": problem,
        }
        if problem is None:
            step = StreamingStep(net).eval()
            names = step.state_names()
            state = step.initial_state(batch=2)  # traced with two streams: nothing specialised to one
            assert all(not s.any() for s in state), "StreamingStep's initial state is not all zeros"
            frames = StreamGeometry.of(manifest["model"]).first_step_frames()
            feats = torch.randn(2, frames, net.num_features, generator=torch.Generator().manual_seed(1))
            args = (feats, torch.tensor([NOT_FINAL, NOT_FINAL]), *state)
            dynamic = {"feats": {0: "batch", 1: "frames"}, "valid_until": {0: "batch"},
                       "log_probs": {0: "batch", 1: "out_frames"}}
            for name in names:
                axes = {state_batch_dim(name): "batch"}
                if name.startswith("conv") and name.endswith("_cache"):  # its length changes after the first step
                    axes[2] = f"{name}_frames"
                dynamic[name] = axes
                dynamic[f"{name}_out"] = {k: (v if k != 2 else f"{name}_out_frames") for k, v in axes.items()}
            _export_graph(step, args, out_dir / f"stream_step{suffix}", format, STREAM_INPUTS + names,
                          STREAM_OUTPUTS + [f"{n}_out" for n in names], dynamic, quantize)
            manifest["stream"] = {
                "model_file": f"stream_step{suffix}", "inputs": STREAM_INPUTS, "outputs": STREAM_OUTPUTS,
                "not_final": NOT_FINAL, "batched": True,  # streams stacked along each state's batch dimension
                "state": [{"name": n, "shape": list(s.shape), "dtype": _dtype_name(s)}
                          for n, s in zip(names, step.initial_state(batch=1))],
            }
    write_text_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return out_dir


def _export_sherpa_onnx(net: DeepSpeech2, tokenizer, cfg, features: dict, checkpoint: Path, out_dir: Path,
                        quantize: str | None) -> None:
    """model.onnx (the contract of sherpa-onnx's Zipformer CTC family: the offline model with its
    inputs and outputs renamed, the vocabulary fixed), tokens.txt and README.md into `out_dir`."""
    comment = f"DeepSpeech2 by ds2 {__version__} from {checkpoint.name}" + (f", {quantize} weights" if quantize else "")
    with torch.no_grad():
        _export_graph(OfflineModel(net).eval(), _example_batch(net), out_dir / "model.onnx", "onnx", SHERPA_INPUTS,
                      SHERPA_OUTPUTS, {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
                                       "log_probs_lens": {0: "N"}}, quantize,
                      sherpa_metadata(int(net.vocab_size), cfg.model.time_stride, comment))
    write_text_atomic(out_dir / "tokens.txt", tokens_txt(tokenizer.symbols))
    write_text_atomic(out_dir / "README.md", sherpa_readme(features, quantize is not None, cfg.model.time_stride))
