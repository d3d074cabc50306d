"""Test and benchmark harness for `ds2 serve`, not a supported client library.

What the tests (tests/test_serve*.py, tests/test_bad_input_serve.py) and the benchmarks
(bench/serve_load.py, bench/serve_screenshot.py) use to drive a real server:

- `running_server(model, *options)`: starts `ds2 serve MODEL --port 0 OPTIONS` in a child process,
  yields its URL, and checks that it stops cleanly on SIGTERM;
- `stream(url, samples, rate, ...)`: one utterance over the WebSocket protocol (documented in
  ds2/serve/__init__.py) at a chosen pace, collecting what the server answers (`StreamResult`).

A client of your own speaks that protocol; this module is a compact example of it:

    import asyncio, soundfile as sf
    from ds2.serve.testing import stream
    x, rate = sf.read("a.wav", dtype="float32")
    result = asyncio.run(stream("http://127.0.0.1:8000", x, rate, pace=1))   # real-time pace
    print(result.partials, result.final["text"], result.latency)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np


@contextlib.contextmanager
def running_server(model, *options, timeout: float = 120.0):
    """Start `ds2 serve MODEL --port 0 OPTIONS` and yield (base URL, process); its stderr is
    drained in a thread into `process.log` (a list of lines). Stops it with SIGTERM at the end and
    checks that it exits cleanly."""
    proc = subprocess.Popen([sys.executable, "-m", "ds2", "serve", str(model), "--host", "127.0.0.1", "--port", "0",
                             *map(str, options)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.log = []
    url, deadline = None, time.monotonic() + timeout
    ready = threading.Event()

    def drain():
        nonlocal url
        for line in proc.stderr:
            proc.log.append(line)
            if "listening on " in line and url is None:
                url = line.split("listening on ", 1)[1].strip()
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("ds2 serve did not start in time:\n" + "".join(proc.log[-20:]))
    if url is None:
        proc.wait(10)
        raise RuntimeError(f"ds2 serve exited ({proc.returncode}) before listening:\n" + "".join(proc.log[-20:]))
    try:
        yield url, proc
    finally:
        proc.terminate()
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError("ds2 serve did not stop on SIGTERM") from None
    assert code == 0, f"ds2 serve exited with {code}:\n" + "".join(proc.log[-20:])


@dataclass
class StreamResult:
    ready: dict | None = None
    partials: list[str] = field(default_factory=list)
    final: dict | None = None
    error: str | None = None
    close_code: int | None = None
    latency: float | None = None  # seconds from the end message to the final result
    sent_seconds: float = 0.0


def pcm16(samples: np.ndarray) -> bytes:
    """Little-endian int16 of float samples (the inverse of reading a 16-bit file as floats)."""
    return np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2").tobytes()


async def stream(url: str, samples: np.ndarray, rate: int, chunk_ms: int = 100, pace: float = 1.0,
                 fmt: str = "pcm16", start: dict | None = None, session=None) -> StreamResult:
    """Send `samples` (float) to ws URL/ws in `chunk_ms` chunks at `pace` x real time (0: as fast as
    possible), then the end message; collect what the server answers."""
    import aiohttp

    result = StreamResult()
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=0) as ws:
            await ws.send_json(start or {"type": "start", "sample_rate": rate, "format": fmt})
            ended_at = None

            async def read():
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    m = json.loads(msg.data)
                    if m["type"] == "ready":
                        result.ready = m
                    elif m["type"] == "partial":
                        result.partials.append(m["text"])
                    elif m["type"] == "final":
                        result.final = m
                        result.latency = time.monotonic() - ended_at if ended_at else None
                    elif m["type"] == "error":
                        result.error = m["message"]

            reader = asyncio.create_task(read())
            n = max(1, rate * chunk_ms // 1000)
            t0 = time.monotonic()
            try:
                for i in range(0, len(samples), n):
                    piece = samples[i:i + n]
                    await ws.send_bytes(pcm16(piece) if fmt == "pcm16" else piece.astype("<f4").tobytes())
                    result.sent_seconds = (i + len(piece)) / rate
                    if pace:
                        await asyncio.sleep(max(0.0, t0 + result.sent_seconds / pace - time.monotonic()))
                ended_at = time.monotonic()
                await ws.send_json({"type": "end"})
            except (ConnectionResetError, aiohttp.ClientConnectionError):
                pass  # the server closed the stream: its reason is in the messages
            await reader
            result.close_code = ws.close_code
    finally:
        if own:
            await session.close()
    return result
