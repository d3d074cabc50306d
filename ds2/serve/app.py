"""The aiohttp application of `ds2 serve`: the WebSocket stream, the upload, the health check and
the page (the protocol is in ds2/serve/__init__.py, the limits on clients in ds2/serve/limits.py,
the parsing of their messages in ds2/serve/messages.py).

One event loop handles every connection; the model's forward passes run in the dispatcher's
thread (batched across streams), the decoding of final results in a second thread. Everything a
client sends is checked before it reaches the model, and each connection's failure closes only
that connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from aiohttp import WSMsgType, web

from ds2.infer.audio import AudioError, StreamResampler, load_audio
from ds2.infer.stream import StreamingRecognizer, run_steps
from ds2.serve.dispatch import BatchDispatcher
from ds2.serve.limits import (CLOSE_TIMEOUT, GOING_AWAY, NORMAL, SERVER_ERROR, TRY_LATER, Limits, Pace, StreamError,
                              WebSocket)
from ds2.serve.messages import audio_samples, message_type, parse_start

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


class Server:
    """A Transcriber (model + decoding method) served to many clients at once."""

    def __init__(self, transcriber, name: str, limits: Limits | None = None, batching: bool = True,
                 max_batch: int = 32, max_wait: float = 0.010, step_ms: int = 100):
        self.transcriber = transcriber
        self.model = transcriber.model
        self.name = name
        self.limits = limits or Limits()
        self.batching = batching
        self.dispatcher = BatchDispatcher(self.model, batching, max_batch, max_wait, clients=lambda: self.clients)
        self.decoder = ThreadPoolExecutor(1, thread_name_prefix="ds2-decode")
        self.rate = self.model.front_end.sampling_rate
        stride = self.model.geometry.stride
        # streams step in whole multiples of this many feature frames: steps of equal size batch together
        frames = max(1, round(step_ms / 1000 / self.model.front_end.frame_shift))
        self.quantum = -(-frames // stride) * stride
        self.tasks: set[asyncio.Task] = set()  # the WebSocket streams in progress
        self.uploads = 0  # uploads in progress
        self.served = 0
        self.stopping = False  # SIGTERM: no new streams

    @property
    def streams(self) -> int:
        return len(self.tasks)

    @property
    def clients(self) -> int:
        return self.streams + self.uploads

    def warm_up(self) -> None:
        """Run a second of silence through the model as a stream and as a whole utterance, and
        decode it, so that no client waits for the backend's lazy set-up or an import (each
        about a second here, and the event loop would stall every stream meanwhile)."""
        StreamResampler(48000, self.rate)  # imports SciPy's filter design (a second, which would stall every stream)
        silence = np.zeros(self.rate, np.float32)
        self.transcriber.result("warm-up", self.model.log_probs([self.model.front_end(silence)])[0], 1.0)
        if self.model.streaming:
            rec = StreamingRecognizer(self.model)
            for start in range(0, len(silence), self.rate // 10):
                rec.push(silence[start:start + self.rate // 10])
                step = rec.next_step(self.quantum)
                if step is not None:
                    run_steps(self.model, [(rec, step)])
            run_steps(self.model, [(rec, rec.final_step())])

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_upload_bytes)
        app.router.add_get("/", self.page)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ws", self.websocket)
        app.router.add_post("/api/transcribe", self.upload)
        if STATIC.is_dir():
            app.router.add_static("/static/", STATIC)
        app.on_cleanup.append(self._cleanup)
        return app

    def runner(self) -> web.AppRunner:
        """The app, with connections that take over `header_timeout` to send a request's line and
        headers closed (aiohttp's keep-alive timeout, which also counts from the connection's start)."""
        return web.AppRunner(self.app(), access_log=None, handle_signals=False,
                             keepalive_timeout=self.limits.header_timeout, shutdown_timeout=self.limits.shutdown_grace)

    async def stop(self) -> None:
        """Take no more streams; give those in progress `shutdown_grace` s to end, then close them (1001)."""
        self.stopping = True
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.limits.shutdown_grace)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=CLOSE_TIMEOUT + 1)

    async def _cleanup(self, app) -> None:
        self.dispatcher.close()
        self.decoder.shutdown(wait=False, cancel_futures=True)

    # -- HTTP ---------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        index = STATIC / "index.html"
        if not index.is_file():
            raise web.HTTPNotFound(text="this ds2 has no page (ds2/serve/static/index.html is missing)")
        return web.FileResponse(index)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({
            "status": "ok", "model": self.name, "streaming": bool(self.model.streaming),
            "sample_rate": self.rate, "method": self.transcriber.method, "streams": self.streams,
            "max_streams": self.limits.max_streams, "max_seconds": self.limits.max_seconds,
            "batching": self.batching, "batches": self.dispatcher.stats.batches,
            "mean_batch": round(self.dispatcher.stats.mean_batch, 2), "served": self.served,
        })

    async def upload(self, request: web.Request) -> web.Response:
        """POST /api/transcribe: a whole audio file, raw or as the multipart field `file`."""
        multipart = request.content_type.startswith("multipart/")
        try:
            body = await asyncio.wait_for(request.post() if multipart else request.read(), self.limits.upload_timeout)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the file is over {self.limits.max_upload_bytes >> 20} MiB")
        except asyncio.TimeoutError:
            return _error(408, f"the upload did not arrive within {self.limits.upload_timeout:g} s")
        if multipart:
            field = body.get("file")
            if field is None or not hasattr(field, "file"):
                return _error(400, "the form has no file field named `file`")
            name, data = field.filename or "upload", field.file.read()
        else:
            name, data = request.query.get("name", "upload"), body
        if not data:
            return _error(400, "the request holds no audio (send the file as the body)")
        loop = asyncio.get_running_loop()
        try:
            samples = await loop.run_in_executor(self.decoder, load_audio, bytes(data), self.rate, name)
            seconds = len(samples) / self.rate
            if seconds > self.limits.max_seconds:
                return _error(413, f"{name}: {seconds:.1f} s of audio, over the limit of "
                                   f"{self.limits.max_seconds:g} s")
            feats = self.transcriber.features(samples, name)
        except AudioError as e:
            return _error(400, str(e))
        self.uploads += 1
        try:
            log_probs = await self.dispatcher.log_probs(feats)
        finally:
            self.uploads -= 1
        transcript = await loop.run_in_executor(self.decoder, self.transcriber.result, name, log_probs, seconds)
        self.served += 1
        return web.Response(text=transcript.to_json(), content_type="application/json")

    # -- WebSocket ----------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = WebSocket(max_msg_size=self.limits.max_message_bytes, heartbeat=None, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        if self.stopping:
            await _close_with_error(ws, SHUTTING_DOWN, GOING_AWAY)
            return ws
        if self.streams >= self.limits.max_streams:
            await _close_with_error(ws, f"server busy: it serves {self.limits.max_streams} streams at most, "
                                        f"try again later", TRY_LATER)
            return ws
        task = asyncio.current_task()
        self.tasks.add(task)
        started = time.monotonic()
        try:
            await self._stream(ws)
            if ws.too_big:
                await ws.linger(request)
        except StreamError as e:
            await _close_with_error(ws, str(e), e.code)
        except ConnectionResetError:
            pass  # the client went away
        except asyncio.CancelledError:  # stop(): the stream did not end within the grace period
            await _close_with_error(ws, SHUTTING_DOWN, GOING_AWAY)
            raise
        except Exception:  # noqa: BLE001 - one stream's failure closes that stream only
            log.exception("stream failed")
            await _close_with_error(ws, "internal server error", SERVER_ERROR)
        finally:
            self.tasks.discard(task)
            log.info("stream closed after %.1f s (%d in progress)", time.monotonic() - started, self.streams)
        return ws

    async def _receive(self, ws: web.WebSocketResponse, pace: Pace | None = None):
        """The next message; a StreamError when none comes within the idle timeout, or when the
        stream's audio falls behind `pace`."""
        idle, slack = self.limits.idle_timeout, pace.slack() if pace else float("inf")
        if slack <= 0:
            raise pace.error()
        waiting = time.monotonic()
        try:  # not receive(timeout=): each ping the client sends would start that timeout again
            msg = await asyncio.wait_for(ws.receive(), min(idle, slack))
        except asyncio.TimeoutError:
            msg = None
        if pace:
            pace.waited += time.monotonic() - waiting
        if msg is not None:
            return msg
        if slack < idle:
            raise pace.error()
        raise StreamError(f"no message for {idle:g} s", GOING_AWAY)

    async def _stream(self, ws: web.WebSocketResponse) -> None:
        msg = await self._receive(ws)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return
        dtype, scale, rate = parse_start(msg)
        await ws.send_json({"type": "ready", "streaming": bool(self.model.streaming), "sample_rate": self.rate,
                            "max_seconds": self.limits.max_seconds})
        resampler = StreamResampler(rate, self.rate)
        rec = StreamingRecognizer(self.model) if self.model.streaming else None
        kept: list[np.ndarray] = []  # a model that cannot stream gets the whole utterance at the end
        received, partial = 0, ""
        pace = Pace(self.limits.min_rate, self.limits.rate_grace)
        while True:
            msg = await self._receive(ws, pace)
            if msg.type == WSMsgType.BINARY:
                samples = audio_samples(msg.data, dtype, scale)
                received += len(samples)
                pace.audio = received / rate
                if received > self.limits.max_seconds * rate:
                    raise StreamError(f"the stream is longer than the limit of {self.limits.max_seconds:g} s")
                x = resampler.accept(samples)
                if rec is None:
                    kept.append(x)
                    continue
                rec.push(x)
                step = rec.next_step(self.quantum)
                if step is not None:
                    await self.dispatcher.step(rec, step)
                    text = rec.partial
                    if text != partial:
                        partial = text
                        await ws.send_json({"type": "partial", "text": partial})
            elif msg.type == WSMsgType.TEXT:
                if message_type(msg.data) != "end":
                    raise StreamError('expected audio (binary messages) or {"type": "end"}')
                break
            else:  # the client closed or went away, or aiohttp closed the stream (ws.too_big: 1009)
                return
        transcript = await self._final(rec, kept, resampler.finish(), received / rate)
        await ws.send_str(json.dumps({"type": "final", **transcript.to_dict()}, ensure_ascii=False))
        self.served += 1
        await ws.close(code=NORMAL, message=b"done")

    async def _final(self, rec, kept, tail: np.ndarray, seconds: float):
        loop = asyncio.get_running_loop()
        try:
            if rec is not None:
                rec.push(tail)
                step = rec.final_step()  # ValueError: not one frame of audio
                self.transcriber.check_length(round(seconds * self.rate), "stream")  # as an upload would be
            else:
                feats = self.transcriber.features(np.concatenate(kept + [tail]), "stream")
        except AudioError as e:
            raise StreamError(str(e).replace("stream: ", "the stream is ")) from None
        except ValueError:
            raise StreamError("no audio: the stream ended before one frame of audio") from None
        if rec is not None:
            await self.dispatcher.step(rec, step)
            log_probs = rec.result()
        else:
            log_probs = await self.dispatcher.log_probs(feats)
        return await loop.run_in_executor(self.decoder, self.transcriber.result, "stream", log_probs, seconds)


SHUTTING_DOWN = "the server is shutting down"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _close_with_error(ws: web.WebSocketResponse, message: str, code: int) -> None:
    if ws.closed:
        return
    try:
        await ws.send_json({"type": "error", "message": message})
        await ws.close(code=code, message=message.encode()[:120])
    except (ConnectionResetError, RuntimeError):
        pass
