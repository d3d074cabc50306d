"""`ds2 serve` as a process on 127.0.0.1, spoken to over its WebSocket and HTTP endpoints.

The model has memorised one espeak-ng sentence (tests/memorised.py), so the server's text and
word times can be compared with `ds2 transcribe` of the same audio. Every bad client runs while a
good stream is under way, and the good stream must still end with the right text.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from memorised import cer
from random_checkpoint import random_checkpoint

from ds2.model import ModelConfig
from ds2.serve.testing import running_server, stream

DS2 = [sys.executable, "-m", "ds2"]
LIMITS = ["--max-streams", 4, "--max-seconds", 8, "--idle-timeout", 2, "--max-upload-mb", 1]


def transcribe_json(model, wav, *options) -> dict:
    proc = subprocess.run([*DS2, "transcribe", str(model), str(wav), "--format", "json", *options],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def server(memorised):
    exp, audio = memorised
    with running_server(exp, *LIMITS) as (url, proc):
        yield url, proc, audio


def run(coro):
    return asyncio.run(coro)


def speech(audio, name="espeak_22050.wav"):
    x, rate = sf.read(str(audio / name), dtype="float32")
    return x, rate


def words(result: dict):
    return [(w["word"], w["start"], w["end"]) for w in result["words"]]


def test_stream_gives_growing_partials_and_the_transcribe_result(server, memorised):
    """float32 at 22.05 kHz (resampled by the server as `ds2 transcribe` resamples the file): the
    final result is transcribe's, words and times; the partial text grows towards it."""
    url, _, audio = server
    x, rate = speech(audio)
    want = transcribe_json(memorised[0], audio / "espeak_22050.wav")
    result = run(stream(url, x, rate, chunk_ms=100, pace=4, fmt="float32"))
    assert result.error is None and result.close_code == 1000
    assert result.ready == {"type": "ready", "streaming": True, "sample_rate": 16000, "max_seconds": 8.0}
    assert result.final["text"] == want["text"] and cer(want["text"]) <= 0.05
    assert words(result.final) == words(want) and result.final["duration"] == want["duration"]
    grown = [p for p in result.partials if p]
    assert len(grown) >= 5 and all(b.startswith(a[:-1]) for a, b in zip(grown, grown[1:]))
    assert result.final["text"].startswith(grown[-1].strip()[:-1])


def test_upload_raw_and_multipart_and_bad_files(server, memorised):
    url, _, audio = server
    want = transcribe_json(memorised[0], audio / "s16k.flac")

    async def go():
        async with aiohttp.ClientSession() as s:
            raw = await s.post(url + "/api/transcribe", data=(audio / "s16k.flac").read_bytes())
            form = aiohttp.FormData()
            form.add_field("file", (audio / "s16k.flac").read_bytes(), filename="s16k.flac")
            multipart = await s.post(url + "/api/transcribe", data=form)
            broken = await s.post(url + "/api/transcribe", data=(audio / "broken.wav").read_bytes())
            empty = await s.post(url + "/api/transcribe", data=b"")
            big = await s.post(url + "/api/transcribe", data=b"\0" * (2 << 20))  # over --max-upload-mb 1
            health = await s.get(url + "/health")
            return [(r.status, await r.json()) for r in (raw, multipart, broken, empty, big, health)]

    (s1, raw), (s2, multipart), (s3, broken), (s4, empty), (s5, big), (s6, health) = run(go())
    assert s1 == s2 == 200 and raw["text"] == multipart["text"] == want["text"]
    assert words(raw) == words(want)
    assert s3 == 400 and broken["error"].startswith("upload: cannot read audio (") and "BytesIO" not in broken["error"]
    assert s4 == 400 and "no audio" in empty["error"]
    assert s5 == 413 and "1 MiB" in big["error"]
    assert s6 == 200 and health["status"] == "ok" and health["streaming"] and health["max_streams"] == 4


async def _alongside(url, audio, bad):
    """Run the coroutine `bad()` while a good stream goes on; returns (bad's result, the good one)."""
    x, rate = speech(audio)
    good = asyncio.create_task(stream(url, x, rate, pace=3))
    await asyncio.sleep(0.3)
    bad_result = await bad()
    return bad_result, await good


def _check_good(good):
    assert good.error is None and good.close_code == 1000 and cer(good.final["text"]) <= 0.05, good


async def _raw_client(url, messages, wait_close=5.0):
    """Send `messages` (dict: JSON text, bytes: binary, str: text) and return (texts received, close code)."""
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url.replace("http", "ws", 1) + "/ws") as ws:
            try:
                for m in messages:
                    if isinstance(m, dict):
                        await ws.send_json(m)
                    elif isinstance(m, bytes):
                        await ws.send_bytes(m)
                    else:
                        await ws.send_str(m)
            except ConnectionResetError:
                pass
            received = []

            async def read():
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        received.append(json.loads(msg.data))

            await asyncio.wait_for(read(), wait_close)
            return received, ws.close_code


START = {"type": "start", "sample_rate": 16000, "format": "pcm16"}
MALFORMED = {
    "binary first": ([b"\0\0" * 100], "first message must be text"),
    "not json": (["hello"], "not JSON"),
    "no start": ([{"type": "hello"}], 'must be {"type": "start"'),
    "rate as text": ([{"type": "start", "sample_rate": "16000"}], "sample_rate must be an integer"),
    "rate too high": ([{"type": "start", "sample_rate": 10**9}], "sample_rate must be an integer"),
    "unknown format": ([{"type": "start", "sample_rate": 16000, "format": "mp3"}], "format must be one of"),
    "odd pcm16 bytes": ([START, b"\0" * 101], "not whole 2-byte samples"),
    "nan float32": ([{**START, "format": "float32"}, np.full(160, np.nan, "<f4").tobytes()], "NaN"),
    "unknown text": ([START, b"\0\0" * 1600, {"type": "pause"}], 'expected audio'),
    "end without audio": ([START, {"type": "end"}], "no audio"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_message_is_answered_and_closed_while_others_go_on(server, case):
    url, proc, audio = server
    messages, expected = MALFORMED[case]
    (received, code), good = run(_alongside(url, audio, lambda: _raw_client(url, messages)))
    errors = [m["message"] for m in received if m["type"] == "error"]
    assert len(errors) == 1 and expected in errors[0], received
    assert code == 1008
    _check_good(good)
    assert proc.poll() is None


def test_limits_close_with_their_reason_while_others_go_on(server):
    """Too many streams (1013), too long (1008), idle (1001), a message over the size limit (1009)."""
    url, proc, audio = server
    x, rate = speech(audio)

    async def too_many():
        async with aiohttp.ClientSession() as s:
            held = [await s.ws_connect(url.replace("http", "ws", 1) + "/ws") for _ in range(3)]  # with the good one: 4
            received, code = await _raw_client(url, [START])
            for ws in held:
                await ws.close()
            return received, code

    (received, code), good = run(_alongside(url, audio, too_many))
    assert code == 1013 and "server busy" in received[0]["message"]
    _check_good(good)

    long = np.tile(x, 4)  # about 10 s, over --max-seconds 8
    (result, good) = run(_alongside(url, audio, lambda: stream(url, long, rate, pace=0)))
    assert result.close_code == 1008 and "longer than the limit of 8 s" in result.error and result.final is None
    _check_good(good)

    async def idle():
        return await _raw_client(url, [START], wait_close=10)

    (received, code), good = run(_alongside(url, audio, idle))
    assert code == 1001 and "no message for 2 s" in received[-1]["message"]
    _check_good(good)

    (received, code), good = run(_alongside(url, audio, lambda: _raw_client(url, [START, b"\0" * (2 << 20)])))
    assert code == 1009
    _check_good(good)
    assert proc.poll() is None


def test_concurrent_streams_share_forward_passes(server):
    """Four streams at once at real-time pace: each gets the sentence, and the server's forward
    passes held several streams (its /health counts them)."""
    url, _, audio = server
    x, rate = speech(audio)

    async def go():
        async with aiohttp.ClientSession() as s:
            before = await (await s.get(url + "/health")).json()
            results = await asyncio.gather(*(stream(url, x, rate, pace=1, session=s) for _ in range(4)))
            after = await (await s.get(url + "/health")).json()
        return before, results, after

    before, results, after = run(go())
    for r in results:
        _check_good(r)
    assert len({r.final["text"] for r in results}) == 1
    jobs = after["mean_batch"] * after["batches"] - before["mean_batch"] * before["batches"]
    assert jobs / (after["batches"] - before["batches"]) > 1.5


def test_bidirectional_model_answers_at_the_end(tmp_path, memorised):
    """A model that cannot stream: no partials, and the final is `ds2 transcribe`'s."""
    _, audio = memorised
    ckpt = random_checkpoint(tmp_path / "bidi.pt", ModelConfig(rnn_layers=1, rnn_hidden=32, conv_channels=[4],
                                                              conv_kernels=[[11, 21]], conv_strides=[[2, 2]]))
    x, rate = speech(audio, "s16k.wav")
    want = transcribe_json(ckpt, audio / "s16k.wav")
    with running_server(ckpt, "--no-batching") as (url, _):
        result = run(stream(url, x, rate, pace=0))
    assert result.ready["streaming"] is False and result.partials == []
    # the 16-bit file's own samples on the wire: transcribe's result exactly
    assert result.final == {"type": "final", **want, "id": "stream"} and result.close_code == 1000


def test_onnxruntime_backend_serves_the_same_result(server, tmp_path):
    """`ds2 serve EXPORT --backend onnxruntime` (the ONNX streaming step, batched across streams):
    two concurrent streams get the torch server's final result."""
    url, _, audio = server
    x, rate = speech(audio)
    exp = audio.parent / "exp" / "memo"
    export = subprocess.run([*DS2, "export", str(exp), "--format", "onnx", "-o", str(tmp_path / "onnx")],
                            capture_output=True)
    assert export.returncode == 0, export.stderr.decode()[-2000:]
    want = run(stream(url, x, rate, pace=0))

    async def two(onnx_url):
        return await asyncio.gather(*(stream(onnx_url, x, rate, pace=2) for _ in range(2)))

    with running_server(tmp_path / "onnx", "--backend", "onnxruntime") as (onnx_url, _):
        results = run(two(onnx_url))
    for r in results:
        assert r.final["text"] == want.final["text"] and words(r.final) == words(want.final)
