"""Issue 30 on the transcription side: a long file in bounded memory, with the right text across
the joins of its pieces; and a one-line message (no traceback) for a broken ONNX export, an
export folder given without --backend onnxruntime, a --list line naming no file, and audio too
short for the streaming and the whole-utterance path alike.

Every case but one runs the real `ds2 transcribe` (or `ds2 serve`) on the memorised model's
espeak-ng audio (tests/memorised.py); the window joins are checked through the Python API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile as sf

from memorised import TEXT

DS2 = [sys.executable, "-m", "ds2"]


def ds2(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*DS2, *map(str, args)], capture_output=True, text=True, timeout=300)


def one_line(proc: subprocess.CompletedProcess, *needles: str, prefix: str = "Error: ") -> str:
    """The one error line of a failed run (no traceback), holding every needle."""
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), proc.stderr[-3000:]
    return lines[0]


def peak_rss_mb(*args) -> tuple[float, subprocess.CompletedProcess]:
    """The peak resident memory (MB) of `ds2 ARGS` (its own, from wait4), and its outcome."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([*DS2, *map(str, args)], stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        proc = subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(), err.read().decode())
    return usage.ru_maxrss / 1024, proc


def repeated(x: np.ndarray, rate: int, seconds: float) -> tuple[np.ndarray, int]:
    """The sentence and 0.3 s of silence, again and again for about `seconds`; and how many times."""
    unit = np.concatenate([x, np.zeros(int(0.3 * rate), np.float32)])
    n = int(seconds * rate / len(unit))
    return np.tile(unit, n), n


def test_a_long_file_is_transcribed_in_bounded_memory(memorised, tmp_path):
    """Four minutes of 22.05 kHz audio (read a block at a time, resampled as it goes, streamed by
    the forward-only model): the peak memory is about that of a 3-second file (the whole-file path
    took about 200 MB more, growing with the square of the length), and every sentence is there."""
    exp, audio = memorised
    x, rate = sf.read(str(audio / "espeak_22050.wav"), dtype="float32")
    long, n = repeated(x, rate, 240)
    sf.write(str(tmp_path / "long.wav"), long, rate, subtype="PCM_16")
    short_mb, short = peak_rss_mb("transcribe", exp, audio / "espeak_22050.wav")
    long_mb, proc = peak_rss_mb("transcribe", exp, tmp_path / "long.wav", "--format", "json")
    assert short.returncode == 0 and proc.returncode == 0, proc.stderr[-3000:]
    assert long_mb - short_mb < 80, (short_mb, long_mb)
    result = json.loads(proc.stdout)
    assert abs(result["duration"] - len(long) / rate) < 0.01
    assert result["text"].count("quick brown fox jumps over the lazy") == n, result["text"]
    times = [t for w in result["words"] for t in (w["start"], w["end"])]
    assert times == sorted(times) and times[-1] > result["duration"] - 1.5  # joined in order, up to the end
    assert " ".join(w["word"] for w in result["words"]) == result["text"]


def test_window_and_segment_joins_keep_the_text_of_one_pass(memorised):
    """40 s with 8-second windows: streamed (forward-only) and in overlapping windows (as a
    bidirectional model is run), decoded in segments cut at pauses: the text of one pass over the
    whole file, word for word, with the same word times within two output frames."""
    from ds2 import Transcriber

    exp, audio = memorised
    x, _ = sf.read(str(audio / "s16k.wav"), dtype="float32")
    samples, n = repeated(x, 16000, 40)
    t = Transcriber.load(exp)
    t.window_seconds = 1000.0
    whole = t.transcribe(samples)
    assert whole.text.count("quick brown fox jumps over the lazy") == n
    t.window_seconds, run, frames = 8.0, t.model.log_probs, []
    t.model.log_probs = lambda feats: frames.extend(map(len, feats)) or run(feats)  # what one pass takes
    for streaming in (True, False):
        t.model.streaming = streaming
        pieces = t.transcribe(samples)
        if streaming:
            assert frames == []
        else:  # windows of 8 s (800 frames), 6 s apart
            assert len(frames) == 7 and max(frames) <= 800, frames
        assert pieces.text == whole.text and pieces.duration == whole.duration
        assert [w.word for w in pieces.words] == [w.word for w in whole.words]
        assert max(abs(a.start - b.start) + abs(a.end - b.end) for a, b in zip(pieces.words, whole.words)) \
            <= 2 * t.frame_seconds + 1e-6


@pytest.fixture(scope="module")
def export(memorised, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "onnx"
    proc = ds2("export", memorised[0], "--format", "onnx", "-o", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_a_broken_onnx_export_is_named_with_the_fix(memorised, export, tmp_path):
    """model.onnx missing or truncated: one line naming it and `ds2 export` to run again, from
    `ds2 transcribe --backend onnxruntime` and from `ds2 serve`, which stops before listening; the
    export folder without --backend onnxruntime: say so, not "train first"."""
    wav = memorised[1] / "s16k.wav"
    missing, corrupt = shutil.copytree(export, tmp_path / "missing"), shutil.copytree(export, tmp_path / "corrupt")
    (missing / "model.onnx").unlink()
    (corrupt / "model.onnx").write_bytes((export / "model.onnx").read_bytes()[:5000])
    fix = "export it again with `ds2 export "
    one_line(ds2("transcribe", missing, wav, "--backend", "onnxruntime"), f"{missing / 'model.onnx'} is missing", fix)
    one_line(ds2("transcribe", corrupt, wav, "--backend", "onnxruntime"), f"{corrupt / 'model.onnx'} cannot be loaded",
             "truncated or corrupt", fix)
    serve = ds2("serve", missing, "--backend", "onnxruntime", "--port", "0")
    assert "listening" not in serve.stderr
    one_line(serve, f"{missing / 'model.onnx'} is missing", fix)
    one_line(ds2("transcribe", export, wav), f"{export} is an export folder", "add --backend onnxruntime")


def test_list_lines_with_spaces_and_lines_naming_no_file(memorised, tmp_path):
    """A path with spaces is a path (relative to the list's folder), `id path` takes a path with
    spaces too; a line naming no file is named by number and content, and the others are transcribed."""
    exp, audio = memorised
    (tmp_path / "sub").mkdir()
    shutil.copy(audio / "s16k.wav", tmp_path / "sub" / "my audio.wav")
    shutil.copy(audio / "s16k.flac", tmp_path / "sub" / "other file.flac")
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text("my audio.wav\nutt2 other file.flac\n# a comment\n\nmissing file.wav\n")
    proc = ds2("transcribe", exp, "--list", listing)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [f"my audio.wav\t{TEXT}", f"utt2\t{TEXT}"]
    one_line(proc, f'--list {listing} line 5 "missing file.wav": no such file (nor "file.wav", after the id "missing")',
             prefix="ds2 transcribe: --list")
    assert "1 of 3 inputs could not be transcribed" in proc.stderr


def test_too_short_audio_is_refused_streamed_or_whole_alike(memorised, tmp_path):
    exp, _ = memorised
    sf.write(str(tmp_path / "10ms.wav"), np.random.default_rng(0).normal(0, 0.1, 160).astype(np.float32), 16000)
    lines = {one_line(ds2("transcribe", exp, tmp_path / "10ms.wav", *extra), "10ms.wav: too short (10 ms of audio",
                      prefix="ds2 transcribe: /") for extra in ([], ["--streaming"])}
    assert len(lines) == 1
