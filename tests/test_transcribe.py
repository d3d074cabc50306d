"""`ds2 transcribe` and `ds2.Transcriber` on real espeak-ng audio in many formats.

The model has memorised one sentence (tests/memorised.py): a wrong resampling or down-mix shows
as a wrong text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from memorised import TEXT, cer

DS2 = [sys.executable, "-m", "ds2"]


def transcribe(*args, stdin: bytes | None = None):
    return subprocess.run([*DS2, "transcribe", *map(str, args)], capture_output=True, input=stdin, timeout=300)


def test_mixed_formats_rates_and_channels_with_one_unreadable_file(memorised):
    exp, audio = memorised
    good = ["s16k.wav", "s16k.flac", "s16k.ogg", "espeak_22050.wav", "stereo_44100.wav", "s8k.wav"]
    files = [audio / g for g in good[:3]] + [audio / "broken.wav"] + [audio / g for g in good[3:]]
    proc = transcribe(exp, *files, "--format", "json")
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    err = proc.stderr.decode()
    assert "broken.wav" in err and "1 of 7 inputs could not be transcribed" in err
    results = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [Path(r["id"]).name for r in results] == good  # in input order, the bad one left out
    for r in results:
        duration = sf.info(str(audio / Path(r["id"]).name)).duration
        assert abs(r["duration"] - duration) < 0.01
        assert cer(r["text"]) <= 0.05, (r["id"], r["text"])  # 8 kHz too: the model heard band-limited copies
        words = r["words"]
        assert " ".join(w["word"] for w in words) == r["text"]
        times = [t for w in words for t in (w["start"], w["end"])]
        assert times == sorted(times) and 0 <= times[0] and times[-1] <= r["duration"]  # monotonic, inside
        assert all(w["end"] > w["start"] for w in words)
        assert all(0 < w["confidence"] <= 1 for w in words) and 0 < r["confidence"] <= 1
    # the sentence lasts about 2.6 s: its first word starts near the beginning, its last ends near the end
    first = results[0]["words"]
    assert first[0]["start"] < 0.5 and first[-1]["end"] > results[0]["duration"] - 0.8


def test_streaming_gives_the_offline_result_and_growing_partials(memorised):
    exp, audio = memorised
    offline = json.loads(transcribe(exp, audio / "s16k.wav", "--format", "json").stdout)
    proc = transcribe(exp, audio / "s16k.wav", "--format", "json", "--streaming", "--chunk-ms", "130", "--partials")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert json.loads(proc.stdout) == offline
    partials = [line.split("\t", 1)[1] for line in proc.stderr.decode().splitlines() if "\t" in line]
    assert len(partials) >= 5 and partials[-1].startswith("the quick brown fox jumps over the lazy")


def test_list_shards_and_stdin(memorised, tmp_path):
    exp, audio = memorised
    names = ["s16k.wav", "s16k.flac", "espeak_22050.wav", "stereo_44100.wav", "s16k.ogg"]
    listing = tmp_path / "wav.scp"
    listing.write_text("".join(f"utt{i} {audio / n}\n" for i, n in enumerate(names)))
    shards = [transcribe(exp, "--list", listing, "--shard", f"{i}/2") for i in range(2)]
    assert all(p.returncode == 0 for p in shards), shards[0].stderr.decode()[-2000:]
    lines = [p.stdout.decode().splitlines() for p in shards]
    assert [line.split("\t")[0] for line in lines[0]] == ["utt0", "utt2", "utt4"]
    assert [line.split("\t")[0] for line in lines[1]] == ["utt1", "utt3"]
    assert all(cer(line.split("\t")[1]) <= 0.05 for part in lines for line in part)
    piped = transcribe(exp, "-", stdin=(audio / "s16k.flac").read_bytes())
    assert piped.returncode == 0 and piped.stdout.decode().startswith("-\t")
    assert cer(piped.stdout.decode().split("\t")[1].strip()) <= 0.05
    bad = transcribe(exp, audio / "s16k.wav", "--shard", "2/2")
    assert bad.returncode == 2 and "0 <= I < N" in bad.stderr.decode()


def test_python_api_and_errors(memorised, tmp_path):
    from ds2 import Transcriber
    from ds2.infer.audio import AudioError

    exp, audio = memorised
    t = Transcriber.load(exp / "checkpoints" / "best.pt")
    assert cer(t.transcribe(audio / "stereo_44100.wav").text) <= 0.05
    x, _ = sf.read(str(audio / "s16k.wav"), dtype="float32")
    assert t.transcribe(x).text == t.transcribe(audio / "s16k.wav").text
    with pytest.raises(AudioError, match="broken.wav: cannot read audio"):
        t.transcribe(audio / "broken.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav"):
        t.transcribe(tmp_path / "empty.wav")
    sf.write(str(tmp_path / "short.wav"), np.zeros(100, np.float32), 16000)
    with pytest.raises(AudioError, match="too short"):
        t.transcribe(tmp_path / "short.wav")
    # beam search needs an LM: none given and none used by a decoding of the experiment
    proc = transcribe(exp, audio / "s16k.wav", "--method", "beam")
    assert proc.returncode == 1 and "--method beam needs --lm" in proc.stderr.decode()


def test_onnxruntime_backend_transcribes_without_torch(memorised, tmp_path):
    """`ds2 export` then `ds2 transcribe --backend onnxruntime` in a process where `import torch`
    fails: the same texts, words and times as the torch backend, offline and streaming."""
    exp, audio = memorised
    export = subprocess.run([*DS2, "export", exp, "--format", "onnx", "-o", tmp_path / "onnx"], capture_output=True)
    assert export.returncode == 0, export.stderr.decode()[-2000:]
    blocked = tmp_path / "blocked" / "torch"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(blocked.parent)}
    files = [audio / "s16k.wav", audio / "stereo_44100.wav"]
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert b"torch is blocked" in check.stderr
    for extra in ([], ["--streaming", "--chunk-ms", "200"]):
        reference = transcribe(exp, *files, "--format", "json", *extra)
        proc = subprocess.run([*DS2, "transcribe", tmp_path / "onnx", *files, "--backend", "onnxruntime",
                               "--format", "json", *extra], env=env, capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        ours, ref = [[json.loads(x) for x in p.stdout.decode().splitlines()] for p in (proc, reference)]
        assert [r["text"] for r in ours] == [r["text"] for r in ref] and cer(ours[0]["text"]) <= 0.05
        for a, b in zip(ours, ref):
            assert [(w["word"], w["start"], w["end"]) for w in a["words"]] == \
                   [(w["word"], w["start"], w["end"]) for w in b["words"]]


def test_beam_takes_the_lm_and_tuned_weights_of_the_experiment(memorised, tmp_path):
    """--method beam with nothing given: the LM its decodings used (result.json, a path relative to
    the recipe folder EXP/../..) and EXP/tuned/beam.json's weights."""
    exp, audio = memorised
    text = tmp_path / "lm.txt"
    text.write_text(f"{TEXT}\nthe lazy dog sleeps\na quick brown dog jumps\nthe fox runs over the hill\n")
    recipe = exp.parent.parent
    lm = subprocess.run([*DS2, "lm", "train", text, recipe / "data" / "lm", "--order", "2"], capture_output=True)
    assert lm.returncode == 0, lm.stderr.decode()[-2000:]
    (exp / "decode_dev_beam").mkdir()
    (exp / "decode_dev_beam" / "result.json").write_text(json.dumps(
        {"method": "beam", "settings": {"lm": "data/lm/lm_2gram.bin", "beam": 16, "alpha": 0.3, "beta": 0.5}}))
    (exp / "tuned").mkdir()
    (exp / "tuned" / "beam.json").write_text(json.dumps({"method": "beam", "params": {"alpha": 0.3, "beta": 0.5}}))
    proc = subprocess.run([*DS2, "transcribe", exp, audio / "s16k.wav", "--method", "beam"], capture_output=True,
                          cwd=tmp_path, timeout=300)  # not the recipe folder: the path is found from EXP
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert cer(proc.stdout.decode().split("\t")[1].strip()) <= 0.05
    from ds2.infer.transcriber import decoding_options

    opts = decoding_options("beam", exp, {})
    assert Path(opts.lm) == recipe / "data" / "lm" / "lm_2gram.bin" and (opts.alpha, opts.beta) == (0.3, 0.5)
    assert decoding_options("beam", exp, {"alpha": 1.5}).alpha == 1.5  # given wins
