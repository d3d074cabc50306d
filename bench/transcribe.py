"""Inference speed: real-time factor on one CPU thread, torch against ONNX Runtime, int8 and
sherpa-onnx, each with its greedy CER, and the latency of streaming recognition per chunk, all in one run.

    python bench/transcribe.py --model egs/synth/exp/ds2 --streaming-model egs/synth/exp/streaming \\
        [--cuts egs/synth/data/fbank/synth_cuts_test.jsonl.gz --num 300 | --audio-dir DIR --num 40]

Without --cuts (a Lhotse cut set: its audio and transcripts) or --audio-dir (WAV files, no
transcripts: no CER), espeak-ng reads a fixed list of sentences. Each model is exported to ONNX
(`ds2 export`) into a temporary folder. RTF = seconds of computation per second of audio, one
utterance at a time (batch 1, as a user transcribes files), one thread (torch.set_num_threads(1),
onnxruntime intra_op_num_threads=1); the NumPy feature front-end both backends share is timed
apart. Streaming: every utterance fed in chunks of 100, 200 and 400 ms; per chunk, the compute
time of `StreamingRecognizer.accept` (features, model step, partial text), and the latency of
the chunk's last sample in the output = the model's algorithmic look-ahead (its convolutions'
right context and the row convolution's future frames) + that compute.

Deployment rows (--model): audio to greedy text, features included, for torch, ONNX Runtime in
float32 and int8 (`ds2 export --quantize int8`), and sherpa-onnx's offline recogniser (its own
C++ fbank and greedy search) on `ds2 export --format sherpa-onnx` in float32 and int8, where the
model's features allow it (25 ms fbank without pitch). Each row: the graph's file size, RTF,
speed against ONNX Runtime float32, greedy CER, and how many texts differ from torch's.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ds2.report import cpu_description

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a journey of a thousand miles begins with a single step",
    "speech recognition turns sound into written words",
    "every model should be measured on the machine it runs on",
    "the row convolution lets a forward only network see a little of the future",
    "it was the best of times it was the worst of times it was the age of wisdom",
    "she sells sea shells by the sea shore",
    "numbers in a readme must come from a command that was run",
]


def load_cuts(path: str, num: int, rate: int) -> tuple[list[np.ndarray], list[str]]:
    """The first `num` cuts of the cut set `path` (by id): their audio at `rate`, and transcripts."""
    from lhotse import CutSet

    cuts = sorted(CutSet.from_file(path).to_eager(), key=lambda c: c.id)[:num]
    audio = [c.resample(rate).load_audio()[0].astype(np.float32) for c in cuts]
    return audio, [" ".join(s.text for s in c.supervisions) for c in cuts]


def load_audio(audio_dir: str | None, num: int, rate: int, tmp: Path) -> list[np.ndarray]:
    from ds2.infer.audio import load_audio as load

    if audio_dir:
        paths = sorted(Path(audio_dir).glob("*test*.wav")) or sorted(Path(audio_dir).glob("*.wav"))
        paths = paths[:num]
    else:
        paths = []
        for i, text in enumerate((SENTENCES * (num // len(SENTENCES) + 1))[:num]):
            path = tmp / f"s{i}.wav"
            voice = ["en-us", "en", "en-gb-x-rp", "en-us+f3"][i % 4]
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(140 + 10 * (i % 5)), "-w", str(path), text], check=True)
            paths.append(path)
    if not paths:
        raise SystemExit(f"no WAV files in {audio_dir}")
    return [load(p, rate) for p in paths]


def rtf(model, feats: list[np.ndarray], seconds: float) -> float:
    """RTF of `model`'s log-probs alone (features given), one utterance at a time."""
    return transcribe_all(lambda f: model.log_probs([f]), feats, seconds)[0]


def transcribe_all(transcribe, audio: list, seconds: float, repeats: int = 2) -> tuple[float, list]:
    """(RTF, outputs) of `transcribe` (e.g. audio -> greedy text) over every input, the best of `repeats` passes."""
    best, texts = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        texts = [transcribe(x) for x in audio]
        best = min(best, time.perf_counter() - start)
    return best / seconds, texts


def ours(model):
    """audio -> greedy text through `model` (a ds2 backend): its NumPy front-end, log-probs, best path."""
    from ds2.decode.greedy import best_path_text

    return lambda x: best_path_text(model.log_probs([model.front_end(x)])[0], model.tokenizer)


def sherpa(folder: Path, rate: int):
    """audio -> greedy text through sherpa-onnx's offline recogniser of a `ds2 export --format sherpa-onnx` folder."""
    import sherpa_onnx

    recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(
        model=str(folder / "model.onnx"), tokens=str(folder / "tokens.txt"), num_threads=1, sample_rate=rate)

    def transcribe(x):
        stream = recognizer.create_stream()
        stream.accept_waveform(rate, x)
        recognizer.decode_stream(stream)
        return " ".join(stream.result.text.split())

    return transcribe


def deployment_rows(path: str, am, onnx, audio: list[np.ndarray], refs: list[str] | None, seconds: float, tmp: Path):
    """The table of audio-to-text rows of the model `path` (torch backend `am`, ONNX Runtime float32 `onnx`,
    the export main() already made)."""
    from ds2.infer.export import export_model
    from ds2.infer.onnx_model import OnnxAcousticModel
    from ds2.infer.sherpa_export import sherpa_problem
    from ds2.score import score

    rate = am.front_end.sampling_rate
    int8 = OnnxAcousticModel(export_model(path, tmp / "onnx_int8", "onnx", "int8"), threads=1)
    rows = [("torch", "float32", sum(p.numel() for p in am.model.parameters()) * 4, ours(am))]
    for weights, model in (("float32", onnx), ("int8", int8)):
        rows.append(("ONNX Runtime", weights, (model.path / "model.onnx").stat().st_size, ours(model)))
    problem = sherpa_problem(am.features, am.tokenizer.symbols)
    if problem is None:
        for quantize in (None, "int8"):
            folder = export_model(path, tmp / f"sherpa_{quantize}", "sherpa-onnx", quantize)
            rows.append(("sherpa-onnx", quantize or "float32", (folder / "model.onnx").stat().st_size,
                         sherpa(folder, rate)))
    results = [(name, weights, size, *transcribe_all(fn, audio, seconds)) for name, weights, size, fn in rows]
    base = next(r[3] for r in results if r[0] == "ONNX Runtime" and r[1] == "float32")
    torch_texts = results[0][4]
    print("| backend | weights | graph | RTF (audio to text) | speed vs ONNX Runtime float32 | greedy CER | "
          "texts unlike torch's |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, weights, size, r, texts in results:
        cer = "–" if refs is None else f"{score(dict(enumerate(refs)), dict(enumerate(texts)))[1].rate:.2f} %"
        differ = sum(a != b for a, b in zip(texts, torch_texts))
        print(f"| {name} | {weights} | {size / 1e6:.1f} MB | {r:.4f} | {base / r:.2f}x | {cer} | {differ} |")
    if problem:
        print(f"\nNo sherpa-onnx rows: {problem}.")


def streaming_latency(model, audio: list[np.ndarray], chunk_ms: int) -> tuple[float, float, int]:
    """(median, p95) compute milliseconds per chunk, and the number of chunks."""
    from ds2.infer.stream import StreamingRecognizer

    rate = model.front_end.sampling_rate
    chunk = rate * chunk_ms // 1000
    times = []
    for x in audio:
        rec = StreamingRecognizer(model)
        for start in range(0, len(x), chunk):
            t = time.perf_counter()
            rec.accept(x[start:start + chunk])
            times.append(time.perf_counter() - t)
        rec.finish()
    ms = np.array(times) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 95)), len(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="experiment folder or checkpoint (any model)")
    ap.add_argument("--streaming-model", help="a forward-only model with a row convolution (streaming latency)")
    ap.add_argument("--cuts", help="a Lhotse cut set: the audio and transcripts to use (default: espeak-ng sentences)")
    ap.add_argument("--audio-dir", help="WAV files to use, without transcripts (no CER)")
    ap.add_argument("--num", type=int, default=24, help="utterances")
    args = ap.parse_args()

    import torch

    from ds2.infer.acoustic import TorchAcousticModel
    from ds2.infer.export import export_model
    from ds2.infer.onnx_model import OnnxAcousticModel

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = [("model", args.model)] + ([("streaming model", args.streaming_model)] if args.streaming_model else [])
        first = TorchAcousticModel(args.model)
        rate = first.front_end.sampling_rate
        if args.cuts:
            audio, refs = load_cuts(args.cuts, args.num, rate)
        else:
            audio = load_audio(args.audio_dir, args.num, rate, tmp)
            refs = None if args.audio_dir else (SENTENCES * (args.num // len(SENTENCES) + 1))[:args.num]
        seconds = sum(len(x) for x in audio) / rate
        print(f"CPU: {cpu_description()}; one thread; {len(audio)} utterances, {seconds:.1f} s of audio; "
              f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, "
              f"sherpa-onnx {_version('sherpa-onnx')}\n")
        start = time.perf_counter()
        feats = [first.front_end(x) for x in audio]
        print(f"feature front-end (NumPy, shared by both backends): RTF {(time.perf_counter() - start) / seconds:.4f}\n")
        print("| model | parameters | torch RTF | ONNX Runtime RTF | ONNX Runtime speed vs torch |")
        print("| --- | ---: | ---: | ---: | ---: |")
        backends = {}
        for label, path in models:
            am = TorchAcousticModel(path)
            onnx = OnnxAcousticModel(export_model(path, tmp / label.replace(" ", "_"), "onnx"), threads=1)
            backends[label] = (am, onnx)
            f = [am.front_end(x) for x in audio] if am.features != first.features else feats
            t, o = rtf(am, f, seconds), rtf(onnx, f, seconds)
            params = sum(p.numel() for p in am.model.parameters()) / 1e6
            print(f"| {label} ({Path(path).name}) | {params:.2f}M | {t:.4f} | {o:.4f} | **{t / o:.2f}x** |")
        print(f"\nAudio to greedy text, {Path(args.model).name}:\n")
        deployment_rows(args.model, *backends["model"], audio, refs, seconds, tmp)
        if args.streaming_model:
            am, onnx = backends["streaming model"]
            g = am.geometry
            ahead_ms = 1000 * g.lookahead_frames() * am.front_end.frame_shift
            print(f"\nStreaming ({Path(args.streaming_model).name}): algorithmic look-ahead {ahead_ms:.0f} ms "
                  f"({g.lookahead_frames()} feature frames: convolutions {g.lookahead_frames() - g.lookahead * g.stride}, "
                  f"row convolution {g.lookahead} output frames of {g.stride})\n")
            print("| backend | chunk | chunks | compute per chunk, median | p95 | latency (look-ahead + compute), "
                  "median | p95 |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for name, model in (("torch", am), ("ONNX Runtime", onnx)):
                for chunk_ms in (100, 200, 400):
                    med, p95, n = streaming_latency(model, audio, chunk_ms)
                    print(f"| {name} | {chunk_ms} ms | {n} | {med:.1f} ms | {p95:.1f} ms | {ahead_ms + med:.0f} ms | "
                          f"{ahead_ms + p95:.0f} ms |")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
