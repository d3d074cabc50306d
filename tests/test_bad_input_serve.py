"""`ds2 serve` against clients that hold it up: a stream whose audio trickles in, headers sent a
byte at a time, a 100 MB message, and SIGTERM with streams in progress. A real server process on
127.0.0.1 with the memorised model (tests/memorised.py), with short limits so that each test
takes seconds.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import subprocess
import time
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from memorised import cer
from test_serve import START, speech

from ds2.serve.testing import running_server, stream

LIMITS = ["--max-streams", 4, "--idle-timeout", 2, "--rate-grace", 1, "--min-rate", 0.5, "--header-timeout", 1,
          "--upload-timeout", 1]


@pytest.fixture(scope="module")
def server(memorised):
    exp, audio = memorised
    with running_server(exp, *LIMITS) as (url, proc):
        yield url, proc, audio


def ws_url(url: str) -> str:
    return url.replace("http", "ws", 1) + "/ws"


async def _texts(ws) -> list[dict]:
    return [json.loads(m.data) async for m in ws if m.type == aiohttp.WSMsgType.TEXT]


def _check_good(good):
    assert good.error is None and good.close_code == 1000 and cer(good.final["text"]) <= 0.05, good


def test_a_trickle_of_audio_or_pings_is_closed_after_the_grace_while_a_real_time_stream_goes_on(server):
    """Two bytes of audio, or a ping, every 0.25 s keep the idle timer (2 s) from ever firing;
    after the server has waited --rate-grace 1 s, under --min-rate 0.5 s of audio a second closes
    the stream (1008). A stream at real-time pace, longer than the grace, ends with its text."""
    url, proc, audio = server
    x, rate = speech(audio)

    async def trickle(send):
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(url)) as ws:
            await ws.send_json(START)
            reader = asyncio.create_task(_texts(ws))
            started = time.monotonic()
            for _ in range(16):  # 4 s at most: without the limit the stream would go on
                if reader.done():
                    break
                await send(ws)
                await asyncio.sleep(0.25)
            received = await asyncio.wait_for(reader, 5)
            return received, ws.close_code, time.monotonic() - started

    async def all_three():
        return await asyncio.gather(trickle(lambda ws: ws.send_bytes(b"\0\0")), trickle(lambda ws: ws.ping()),
                                    stream(url, x, rate, pace=1))

    *trickled, good = asyncio.run(all_three())
    for received, code, seconds in trickled:
        assert code == 1008 and received[-1]["type"] == "error", received
        assert received[-1]["message"].startswith("the audio arrives too slowly: 0.00 s of audio in 1.0 s "
                                                  "(at least 0.5 s a second after the first 1 s)"), received
        assert seconds < 3
    _check_good(good)
    assert proc.poll() is None


def test_headers_sent_a_byte_at_a_time_are_cut_off(server):
    """A request line, then one header byte every 0.1 s: the connection is closed --header-timeout
    (1 s) after it opened, without an answer; a whole request is still answered."""
    url, proc, _ = server
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        opened = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.settimeout(0.1)
        answer = None
        while answer is None and time.monotonic() - opened < 5:
            try:
                sock.sendall(b"a")
                answer = sock.recv(1000)
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                answer = b""
        closed = time.monotonic() - opened
    assert answer == b"", f"the connection is still open after {closed:.1f} s"
    assert closed < 3
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
    assert proc.poll() is None


def test_an_upload_sent_a_byte_at_a_time_gets_408(server):
    """Headers in time, then a body of 1000 bytes a byte every 0.1 s: HTTP 408 after --upload-timeout (1 s)."""
    url, proc, _ = server
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sent = time.monotonic()
        sock.settimeout(0.1)
        answer = b""
        while not answer and time.monotonic() - sent < 5:
            try:
                sock.sendall(b"R")
                answer = sock.recv(1000)
            except TimeoutError:
                pass
        answered = time.monotonic() - sent
    assert answer.startswith(b"HTTP/1.1 408 "), (answer, answered)
    assert b'{"error": "the upload did not arrive within 1 s"}' in answer and answered < 3
    assert proc.poll() is None


def test_a_100_mb_message_closes_with_1009(server):
    """The server announces the close as soon as the message's header gives its size, and reads
    (and drops) the rest, so that the client, still sending, gets the 1009 (not a reset: 1006)."""
    url, proc, _ = server

    async def huge():
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(url)) as ws:
            await ws.send_json(START)
            reader = asyncio.create_task(_texts(ws))
            try:
                await asyncio.wait_for(ws.send_bytes(bytes(100 << 20)), 20)
            except (ConnectionError, aiohttp.ClientConnectionError):  # reset by the server (the old 1006)
                pass
            received = await asyncio.wait_for(reader, 10)
            health = await (await s.get(url + "/health")).json()
            return received, ws.close_code, health

    received, code, health = asyncio.run(huge())
    assert code == 1009, (code, received)
    assert [m["type"] for m in received] == ["ready"] and health["status"] == "ok"
    assert proc.poll() is None


def test_10_ms_of_audio_is_too_short_streamed_as_uploaded(server):
    """The stream's final step would transcribe 10 ms of audio; like an upload, it is refused."""
    url, _, audio = server
    x, rate = speech(audio, "s16k.wav")
    wav = io.BytesIO()
    sf.write(wav, x[:160], rate, format="WAV", subtype="PCM_16")

    async def both():
        async with aiohttp.ClientSession() as s:
            upload = await s.post(url + "/api/transcribe", data=wav.getvalue())
            return await stream(url, x[:160], rate, pace=0, session=s), upload.status, await upload.json()

    streamed, status, uploaded = asyncio.run(both())
    assert status == 400 and uploaded["error"] == "upload: too short (10 ms of audio; 20 ms at least)"
    assert streamed.close_code == 1008 and streamed.final is None
    assert streamed.error == "the stream is too short (10 ms of audio; 20 ms at least)"


def test_sigterm_lets_streams_end_within_the_grace_then_closes_the_rest_and_exits(memorised):
    """SIGTERM with two streams in progress: no new connection is taken; the one that ends within
    --shutdown-grace gets its final text, the other is closed with 1001 and the reason; the
    process exits with 0 shortly after the grace."""
    exp, audio = memorised
    x, rate = speech(audio)  # about 2.6 s
    grace = 2.5
    with running_server(exp, "--shutdown-grace", grace) as (url, proc):
        address = urlsplit(url)

        async def go():
            ending = asyncio.create_task(stream(url, x, rate, pace=1))
            endless = asyncio.create_task(stream(url, np.tile(x, 8), rate, pace=1))  # 20 s
            await asyncio.sleep(1.2)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.3)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address.hostname, address.port), timeout=2).close()
            results = await asyncio.wait_for(asyncio.gather(ending, endless), grace + 10)
            return results, signalled

        (ended, cut), signalled = asyncio.run(go())
        try:
            code = proc.wait(timeout=max(0.1, signalled + grace + 3 - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"ds2 serve still runs {grace + 3} s after SIGTERM:\n" + "".join(proc.log[-10:]))
        exited = time.monotonic() - signalled
    _check_good(ended)
    assert cut.close_code == 1001 and cut.error == "the server is shutting down" and cut.final is None, cut
    assert code == 0 and exited < grace + 3
    assert "ds2 serve: stopping (2 streams in progress get up to 2.5 s to end)\n" in proc.log
