"""`ds2 export --format sherpa-onnx`: sherpa-onnx's own recogniser (PyPI `sherpa_onnx`, its
kaldi-native-fbank features and greedy CTC search, the Zipformer CTC family's loader) transcribes
real espeak-ng audio as `ds2 transcribe` does, for English characters, BPE pieces and Mandarin
characters, in float32 and int8; a model sherpa-onnx cannot feed is refused in one line, and
nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import sherpa_onnx
import soundfile as sf
from scipy.signal import resample_poly

from ds2.data.features import FeatureConfig, feature_settings
from ds2.infer.acoustic import TorchAcousticModel
from ds2.infer.sherpa_export import sherpa_timestamps
from ds2.model import ModelConfig
from ds2.text import BpeTokenizer, CharTokenizer
from tests.memorised import memorise_sentences
from tests.random_checkpoint import random_checkpoint

ENGLISH = ["the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore",
           "numbers must come from a command that was run"]
MANDARIN = ["今天天气很好", "我们一起去学校", "语音识别把声音变成文字"]
SMALL = dict(conv_channels=[8], conv_kernels=[[11, 21]], conv_strides=[[3, 4]], rnn_layers=2, rnn_hidden=96)
# English characters: forward-only with a row convolution (a streaming model); BPE: bidirectional with
# per-utterance normalisation (egs/synth's); Mandarin: bidirectional with global normalisation
MODELS = {
    "char": (ENGLISH, "en-us", lambda: CharTokenizer(),
             ModelConfig(feature_norm="global", bidirectional=False, lookahead=3, **SMALL)),
    "bpe": (ENGLISH, "en-us", lambda: BpeTokenizer.train(ENGLISH * 4, vocab_size=40),
            ModelConfig(feature_norm="utterance", bidirectional=True, **SMALL)),
    "zh": (MANDARIN, "cmn", lambda: CharTokenizer(sorted(set("".join(MANDARIN)))),
           ModelConfig(feature_norm="global", bidirectional=True, **SMALL)),
}


def speak(text: str, voice: str, path: Path) -> Path:
    """espeak-ng's `text` in `voice`, resampled to 16 kHz, at `path`."""
    raw = path.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    x, rate = sf.read(str(raw), dtype="float32")
    sf.write(str(path), resample_poly(x, 320, 441).astype(np.float32), 16000, subtype="PCM_16")
    raw.unlink()
    return path


@pytest.fixture(scope="module", params=sorted(MODELS))
def memorised_model(request, tmp_path_factory):
    """(kind, experiment folder, [(text, 16 kHz wav)]) of a small model that memorised its sentences
    on 25 ms fbank (the default, the features sherpa-onnx computes)."""
    texts, voice, tokenizer, cfg = MODELS[request.param]
    root = tmp_path_factory.mktemp(f"sherpa_{request.param}")
    sentences = [(t, speak(t, voice, root / f"s{i}.wav")) for i, t in enumerate(texts)]
    settings = feature_settings(FeatureConfig(kind="fbank"), 16000)
    assert settings["window"] == 0.025
    return request.param, memorise_sentences(root / "exp" / "memo", sentences, tokenizer(), cfg, settings), sentences


def ds2(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ds2", *map(str, args)], capture_output=True, text=True)


def sherpa_transcripts(folder: Path, wavs: list[Path]) -> list:
    recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(model=str(folder / "model.onnx"),
                                                             tokens=str(folder / "tokens.txt"), num_threads=1)
    results = []
    for wav in wavs:
        samples, rate = sf.read(str(wav), dtype="float32")
        stream = recognizer.create_stream()
        stream.accept_waveform(rate, samples)
        recognizer.decode_stream(stream)
        results.append((stream.result.text, list(stream.result.timestamps), len(samples) / rate))
    return results


def emission_frames(model: TorchAcousticModel, wav: Path) -> list[int]:
    """The output frames where ds2's greedy path (`model`, the torch backend) emits each token."""
    best = model.log_probs([model.front_end(sf.read(str(wav), dtype="float32")[0])])[0].argmax(1)
    return [i for i, k in enumerate(best) if k != model.tokenizer.blank_id and (i == 0 or k != best[i - 1])]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_sherpa_onnx_transcribes_as_ds2_transcribe(memorised_model, tmp_path, quantize):
    kind, exp, sentences = memorised_model
    wavs = [wav for _, wav in sentences]
    ours = ds2("transcribe", exp, *wavs, "--method", "greedy")
    assert ours.returncode == 0, ours.stderr
    ours_text = [line.split("\t", 1)[1] for line in ours.stdout.splitlines()]
    assert ours_text == [t for t, _ in sentences]  # it memorised them: the comparison below means something

    out = tmp_path / "sherpa"
    proc = ds2("export", exp, "--format", "sherpa-onnx", "-o", out, *(["--quantize", quantize] if quantize else []))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.onnx", "tokens.txt"]
    meta = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert meta["subsampling_factor"] == "3" and int(meta["vocab_size"]) == len((out / "tokens.txt").read_text(
        encoding="utf-8").splitlines())
    if quantize:  # the matrix products run in int8
        ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
        assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, ops

    if quantize:  # our own int8 export, run by `ds2 transcribe --backend onnxruntime`, spells them too
        proc = ds2("export", exp, "--quantize", quantize, "-o", tmp_path / "onnx_int8")
        assert proc.returncode == 0, proc.stderr
        int8 = ds2("transcribe", tmp_path / "onnx_int8", *wavs, "--backend", "onnxruntime")
        assert [line.split("\t", 1)[1] for line in int8.stdout.splitlines()] == ours_text, int8.stderr

    theirs = sherpa_transcripts(out, wavs)
    # sherpa-onnx writes the BPE pieces' leading U+2581 as a space, so a sentence starts with one
    assert [" ".join(text.split()) for text, _, _ in theirs] == ours_text
    if kind == "char":
        assert all(" " in text and "\u2581" not in text for text, _, _ in theirs)
    torch_model = None if quantize else TorchAcousticModel(exp)
    for (text, stamps, seconds), wav in zip(theirs, wavs):
        assert kind == "bpe" or len(stamps) == len(text)  # a character a token
        if not quantize:  # each token on the frame where ds2's best path emits it: the same features
            # (sherpa-onnx counts 4 frames of 10 ms an output frame)
            assert [round(t / 0.04) for t in stamps] == emission_frames(torch_model, wav)
        stamps = sherpa_timestamps(stamps, 3)  # seconds, at our stride of 3
        assert stamps == sorted(stamps) and 0.5 * seconds < stamps[-1] < seconds, (stamps, seconds)


def refused(model: Path, out: Path, why: str) -> None:
    proc = ds2("export", model, "--format", "sherpa-onnx", "-o", out)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot be exported for sherpa-onnx" in proc.stderr
    assert why in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_model_sherpa_onnx_cannot_feed_is_refused_and_nothing_is_written(memorised, tmp_path):
    cfg = ModelConfig(**{**SMALL, "rnn_layers": 1, "rnn_hidden": 16})
    spectrogram = random_checkpoint(tmp_path / "spec.pt", cfg, features=FeatureConfig(kind="spectrogram"))
    refused(spectrogram, tmp_path / "a", "trained on spectrogram features, and sherpa-onnx computes only log-mel")
    pitch = random_checkpoint(tmp_path / "pitch.pt", cfg, features=FeatureConfig(kind="fbank", pitch=True))
    refused(pitch, tmp_path / "b", "with pitch, which sherpa-onnx does not compute")
    exp, _ = memorised  # a model of 20 ms windows
    refused(exp, tmp_path / "c", "fbank of 20 ms windows every 10 ms, and sherpa-onnx computes 25 ms ones")
    # and the ONNX export of it stays as it was
    proc = ds2("export", exp, "--format", "torchscript", "--quantize", "int8", "-o", tmp_path / "d")
    assert proc.returncode == 1 and "not TorchScript" in proc.stderr and not (tmp_path / "d").exists()
