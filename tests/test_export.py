"""`ds2 export` (ONNX, TorchScript) and the onnxruntime backend: the same log-probs as PyTorch's
forward pass, whole and streaming, and no torch needed to run the ONNX export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from scipy.signal import resample_poly

from ds2.atomic import save_atomic
from ds2.checkpoint import CheckpointError
from ds2.cli import main
from ds2.infer import ModelError
from ds2.infer.acoustic import TorchAcousticModel
from ds2.infer.export import MANIFEST, OfflineModel, export_model
from ds2.infer.frontend import pad_batch
from ds2.infer.onnx_model import ExportError, OnnxAcousticModel
from ds2.infer.stream import StreamingRecognizer
from ds2.model import DeepSpeech2
from ds2.model.config import ModelConfig
from random_checkpoint import random_checkpoint
from streams import lockstep

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
TOL = 1e-4
SMALL = dict(rnn_hidden=32, rnn_layers=2)
STREAMING = dict(bidirectional=False, feature_norm="global")
MODELS = {  # name: ModelConfig overrides
    "bigru": dict(SMALL),  # the defaults shrunk: two convolutions, bidirectional GRU, per-utterance norm
    "stream_gru": dict(SMALL, **STREAMING, lookahead=3, fc_dims=[24]),
    "bilstm": dict(SMALL, rnn_type="lstm", conv_channels=[8], conv_kernels=[[5, 11]], conv_strides=[[2, 2]]),
    "stream_rnn": dict(SMALL, **STREAMING, rnn_type="rnn", lookahead=2, conv_channels=[8, 8],
                       conv_kernels=[[5, 11], [3, 11]], conv_strides=[[2, 2], [2, 1]]),
    "bigru_no_batch_norm": dict(SMALL, batch_norm=False),  # the recurrent layers without their batch norm
    # an auxiliary pinyin CTC head (training only) on the first recurrent layer: not in the export
    "stream_gru_aux": dict(SMALL, **STREAMING, lookahead=3, aux_units="pinyin", aux_layer=1),
}
STREAMING_MODELS = ["stream_gru", "stream_rnn", "stream_gru_aux"]
SENTENCES = ["yes", "hello world", "the quick brown fox jumps over the lazy dog"]


def make_checkpoint(path: Path, name: str, seed: int = 0) -> Path:
    """A random-weight model of MODELS[name], saved as a checkpoint (`random_checkpoint`)."""
    return random_checkpoint(path, ModelConfig(**MODELS[name]), seed)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> list[Path]:
    """espeak-ng utterances of several lengths, at 16 kHz."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    d = tmp_path_factory.mktemp("wav")
    out = []
    for i, text in enumerate(SENTENCES):
        raw = d / f"raw{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
        x, sr = sf.read(raw, dtype="float32")
        assert sr == 22050
        sf.write(d / f"u{i}.wav", resample_poly(x, 320, 441).astype(np.float32), 16000)
        out.append(d / f"u{i}.wav")
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (checkpoint, ONNX export folder, TorchScript export folder), made once each."""
    root, cache = tmp_path_factory.mktemp("export"), {}

    def get(name):
        if name not in cache:
            ckpt = make_checkpoint(root / f"{name}.pt", name)
            cache[name] = (ckpt, export_model(ckpt, root / f"{name}_onnx", "onnx"),
                           export_model(ckpt, root / f"{name}_ts", "torchscript"))
        return cache[name]

    return get


def features_of(model, wavs) -> list[np.ndarray]:
    return [model.front_end(sf.read(w, dtype="float32")[0]) for w in wavs]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def torchscript_log_probs(module, feats: list[np.ndarray]) -> list[np.ndarray]:
    batch, lengths = pad_batch(feats)
    with torch.no_grad():
        out, out_lens = module(torch.from_numpy(batch), torch.from_numpy(lengths))
    return [out[i, : out_lens[i]].numpy() for i in range(len(feats))]


@pytest.mark.parametrize("name", list(MODELS))
def test_exports_match_torch(name, exported, wavs):
    """ONNX Runtime's and TorchScript's log-probs equal PyTorch's (within 1e-4) on a padded batch of
    utterances of several lengths and on each alone, with the same output lengths."""
    ckpt, onnx_dir, ts_dir = exported(name)
    ref_model = TorchAcousticModel(ckpt)
    ort_model = OnnxAcousticModel(onnx_dir)
    ts = torch.jit.load(str(ts_dir / "model.pt"))
    feats = features_of(ort_model, wavs)
    assert len({len(f) for f in feats}) == len(feats)
    ref = ref_model.log_probs(feats)
    assert [len(r) for r in ref] == [ort_model.geometry.output_frames(len(f)) for f in feats]
    for batch in [feats] + [[f] for f in feats]:
        want = ref_model.log_probs(batch)
        assert max_diff(ort_model.log_probs(batch), want) < TOL
        assert max_diff(torchscript_log_probs(ts, batch), want) < TOL
    # the batch gives each utterance what it gets alone
    assert max_diff(ref, [ref_model.log_probs([f])[0] for f in feats]) < TOL
    assert ort_model.streaming == (name in STREAMING_MODELS) == ref_model.streaming
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    assert manifest["vocab_size"] == 29 and manifest["num_features"] == 80 and manifest["format"] == "onnx"
    assert (onnx_dir / "stream_step.onnx").exists() == (ts_dir / "stream_step.pt").exists() == ort_model.streaming


def test_offline_model_is_the_models_forward_on_random_padding():
    """OfflineModel (no PackedSequence) is DeepSpeech2.forward on every valid frame of a batch
    whose padding holds large random values, for each recurrent type and direction."""
    torch.manual_seed(1)
    for overrides in (MODELS["bigru"], MODELS["bilstm"], dict(SMALL, rnn_type="rnn"), MODELS["stream_gru"]):
        model = DeepSpeech2(ModelConfig(**overrides), 80, 29).eval()
        lengths = torch.tensor([50, 17, 33, 49])
        x = torch.randn(4, 50, 80) * 10
        with torch.no_grad():
            want, want_lens = model(x, lengths)
            got, got_lens = OfflineModel(model)(x, lengths)
        assert torch.equal(want_lens, got_lens)
        for i, n in enumerate(want_lens.tolist()):
            assert torch.allclose(got[i, :n], want[i, :n], atol=TOL, rtol=0)
    assert dict(OfflineModel(model).named_parameters()).keys() == {f"model.{k}" for k, _ in model.named_parameters()}


class _TorchScriptStep:
    """The TorchScript export of the streaming step, behind the backend interface StreamingRecognizer drives."""

    def __init__(self, torch_model: TorchAcousticModel, step_file: Path):
        self.ref, self.step = torch_model, torch.jit.load(str(step_file))
        self.front_end, self.geometry, self.tokenizer = torch_model.front_end, torch_model.geometry, torch_model.tokenizer
        self.state_batch_dims = torch_model.state_batch_dims

    def stream_start(self):
        return self.ref.stream_start()

    def stream_step(self, feats, valid_until, state):
        with torch.no_grad():
            out, *state = self.step(torch.from_numpy(feats), torch.from_numpy(valid_until),
                                    *map(torch.from_numpy, state))
        return out.numpy(), [s.numpy() for s in state]


@pytest.mark.parametrize("name", STREAMING_MODELS)
def test_streaming_export_matches_whole_utterance(name, exported, wavs):
    """The ONNX streaming step, driven by StreamingRecognizer in chunks of several sizes, gives
    the whole-utterance forward pass's log-probs (within 1e-4) and best path; so does TorchScript's."""
    ckpt, onnx_dir, ts_dir = exported(name)
    ref_model = TorchAcousticModel(ckpt)
    backends = [OnnxAcousticModel(onnx_dir), _TorchScriptStep(ref_model, ts_dir / "stream_step.pt")]
    worst = 0.0
    for wav in wavs:
        audio = sf.read(wav, dtype="float32")[0]
        ref = ref_model.log_probs([ref_model.front_end(audio)])[0]
        for backend, chunk in [(backends[0], 1600), (backends[0], 533), (backends[1], 2400)]:
            rec = StreamingRecognizer(backend)
            for i in range(0, len(audio), chunk):
                rec.accept(audio[i: i + chunk])
            out = rec.finish()
            assert out.shape == ref.shape
            worst = max(worst, float(np.abs(out - ref).max()))
            assert np.array_equal(out.argmax(1), ref.argmax(1))
    # several streams in one pass of the ONNX step (its batch dimension is dynamic), as ds2 serve runs them
    audios = [sf.read(wav, dtype="float32")[0] for wav in wavs]
    quantum = 4 * backends[0].geometry.stride
    streamed, sizes = lockstep(backends[0], audios, chunk=160 * quantum, quantum=quantum, stagger=0)
    for audio, out in zip(audios, streamed):
        ref = ref_model.log_probs([ref_model.front_end(audio)])[0]
        worst = max(worst, float(np.abs(out - ref).max()))
    assert max(sizes) == len(audios)
    assert worst < TOL


def test_offline_export_cannot_stream(exported):
    _, onnx_dir, ts_dir = exported("bigru")
    model = OnnxAcousticModel(onnx_dir)
    assert not model.streaming and "bidirectional" in model.streaming_problem
    with pytest.raises(ExportError, match="cannot stream: it is bidirectional"):
        model.stream_start()
    with pytest.raises(ExportError, match="not ONNX"):
        OnnxAcousticModel(ts_dir)
    with pytest.raises(ExportError, match="not a ds2 export folder"):
        OnnxAcousticModel(onnx_dir.parent)


_NO_TORCH_SCRIPT = textwrap.dedent("""
    import sys
    try:
        import torch
    except ImportError as e:
        print("import torch raised:", e)
    else:
        sys.exit("torch was importable")
    import numpy as np, soundfile as sf
    from ds2.infer.onnx_model import OnnxAcousticModel
    from ds2.infer.stream import StreamingRecognizer

    export_dir, out_dir, *wavs = sys.argv[1:]
    model = OnnxAcousticModel(export_dir, threads=1)
    feats = [model.front_end(sf.read(w, dtype="float32")[0]) for w in wavs]
    for i, lp in enumerate(model.log_probs(feats)):
        np.save(f"{out_dir}/batch{i}.npy", lp)
        best = lp.argmax(axis=1)
        ids = [int(t) for j, t in enumerate(best) if t != model.tokenizer.blank_id and (j == 0 or t != best[j - 1])]
        print(f"text{i}:", repr(model.tokenizer.decode(ids)))
        rec = StreamingRecognizer(model)
        audio = sf.read(wavs[i], dtype="float32")[0]
        for k in range(0, len(audio), 1000):
            rec.accept(audio[k: k + 1000])
        np.save(f"{out_dir}/stream{i}.npy", rec.finish())
    print("torch modules loaded:", sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
""")


def test_onnx_backend_runs_without_torch(exported, wavs, tmp_path):
    """In a process where `import torch` fails, the ONNX export computes features, log-probs (batch
    and streaming) and the greedy text, equal to what PyTorch computes here."""
    ckpt, onnx_dir, _ = exported("stream_gru")
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch is hidden from this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(REPO)])}
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH_SCRIPT, str(onnx_dir), str(tmp_path), *map(str, wavs)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "import torch raised: torch is hidden from this test" in proc.stdout
    assert "torch modules loaded: []" in proc.stdout
    ref_model = TorchAcousticModel(ckpt)
    ref = ref_model.log_probs(features_of(ref_model, wavs))
    blank = ref_model.tokenizer.blank_id
    for i, want in enumerate(ref):
        assert max_diff([np.load(tmp_path / f"batch{i}.npy"), np.load(tmp_path / f"stream{i}.npy")], [want, want]) < TOL
        best = want.argmax(1)
        ids = [int(t) for j, t in enumerate(best) if t != blank and (j == 0 or t != best[j - 1])]
        assert f"text{i}: {ref_model.tokenizer.decode(ids)!r}" in proc.stdout


def test_export_cli(exported, tmp_path):
    ckpt, _, _ = exported("stream_gru")
    out = CliRunner().invoke(main, ["export", str(ckpt), "--format", "onnx", "--output-dir", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"model.onnx", "stream_step.onnx", MANIFEST}
    exp = tmp_path / "exp"  # an experiment folder: its best.pt, exported beside it by default
    (exp / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt, exp / "checkpoints" / "best.pt")
    out = CliRunner().invoke(main, ["export", str(exp), "--format", "torchscript"])
    assert out.exit_code == 0, out.output
    assert {p.name for p in (exp / "export_torchscript").iterdir()} == {"model.pt", "stream_step.pt", MANIFEST}
    assert json.loads((exp / "export_torchscript" / MANIFEST).read_text())["checkpoint"].endswith("best.pt")


def test_export_cli_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    ckpt = torch.load(make_checkpoint(tmp_path / "old.pt", "bilstm"), weights_only=True)
    del ckpt["features"]
    save_atomic(ckpt, tmp_path / "old.pt")
    for model, says in [("empty", "has no checkpoint"), ("missing", "does not exist"),
                        ("bad.pt", "cannot be read"), ("old.pt", "does not say how its features were computed")]:
        out = CliRunner().invoke(main, ["export", str(tmp_path / model), "-o", str(tmp_path / "out")])
        assert out.exit_code == 1, out.output
        assert out.output.startswith("Error: ") and says in out.output and out.output.count("\n") == 1, out.output
    with pytest.raises(ModelError):
        export_model(tmp_path / "old.pt", tmp_path / "out")
    with pytest.raises(CheckpointError):
        export_model(tmp_path / "bad.pt", tmp_path / "out")


def test_a_model_with_an_aux_head_exports_and_decodes_without_it(exported, wavs, tmp_path):
    """`ds2 export` of a checkpoint with an auxiliary CTC head: the graph has the one log-probs
    output (the head is for training), equal to PyTorch's forward, which the loaded checkpoint
    (head included) gives for decoding."""
    import onnx

    ckpt, _, _ = exported("stream_gru_aux")
    out = CliRunner().invoke(main, ["export", str(ckpt), "--format", "onnx", "--output-dir", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    ref_model = TorchAcousticModel(ckpt)
    assert ref_model.model.aux_head is not None and ref_model.model_config["aux_units"] == "pinyin"
    graph = onnx.load(str(tmp_path / "o" / "model.onnx")).graph
    assert len(graph.output) == 2  # log-probs and their lengths
    assert not any("aux_head" in init.name for init in graph.initializer)
    ort_model = OnnxAcousticModel(tmp_path / "o")
    feats = features_of(ref_model, wavs)
    want = ref_model.log_probs(feats)
    assert all(w.shape[1] == 29 for w in want)
    assert max_diff(ort_model.log_probs(feats), want) < TOL
    batch, lengths = pad_batch(feats)
    with torch.no_grad():
        plain, plain_lens = ref_model.model(torch.from_numpy(batch), torch.from_numpy(lengths))
        main_lp, _, aux = ref_model.model(torch.from_numpy(batch), torch.from_numpy(lengths), aux=True)
    assert torch.equal(main_lp, plain) and aux.shape[-1] == 215
    assert max_diff(want, [plain[i, :n].numpy() for i, n in enumerate(plain_lens.tolist())]) == 0.0


@pytest.mark.parametrize("name", ["bigru", "bilstm", "stream_rnn"])
def test_int8_export_quantizes_what_onnxruntime_can_and_stays_close(name, exported, wavs, tmp_path):
    """--quantize int8: LSTM nodes and the matrix products run in int8 (DynamicQuantizeLSTM,
    MatMulInteger); GRU and RNN weights are stored in int8 and restored in float32 (Cast, Mul) when
    the session loads; the probabilities stay within a few hundredths of float32's."""
    import onnx

    ckpt, onnx_dir, _ = exported(name)
    out = CliRunner().invoke(main, ["export", str(ckpt), "--quantize", "int8", "-o", str(tmp_path / "q")])
    assert out.exit_code == 0, out.output
    assert "as onnx (int8)" in out.output
    graphs = ["model.onnx"] + (["stream_step.onnx"] if name in STREAMING_MODELS else [])
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == sorted(graphs + [MANIFEST])
    for graph in graphs:
        model = onnx.load(str(tmp_path / "q" / graph))
        ops = {n.op_type for n in model.graph.node}
        int8 = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8}
        assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, ops
        rnn_inputs = {i for n in model.graph.node if n.op_type in ("GRU", "RNN") for i in n.input[1:3]}
        if name == "bilstm":
            assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops, ops
        else:  # W and R of every recurrent node come from int8 initializers
            assert rnn_inputs and all(f"{w}_int8" in int8 for w in rnn_inputs), (rnn_inputs, int8)
    assert json.loads((tmp_path / "q" / MANIFEST).read_text())["quantize"] == "int8"
    fp32, q8 = OnnxAcousticModel(onnx_dir), OnnxAcousticModel(tmp_path / "q")
    feats = features_of(fp32, wavs)
    diff = max_diff([np.exp(x) for x in q8.log_probs(feats)], [np.exp(x) for x in fp32.log_probs(feats)])
    assert 0 < diff < 0.01, diff  # (1e-3 and less here)
    if name in STREAMING_MODELS:  # the int8 streaming step, as the int8 whole-utterance graph
        for wav, want in zip(wavs, q8.log_probs(feats)):
            rec, audio = StreamingRecognizer(q8), sf.read(wav, dtype="float32")[0]
            for i in range(0, len(audio), 1600):
                rec.accept(audio[i: i + 1600])
            assert np.abs(np.exp(rec.finish()) - np.exp(want)).max() < 0.05
