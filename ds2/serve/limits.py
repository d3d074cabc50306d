"""What `ds2 serve` allows a client, and how a stream over a limit is closed (the close codes are
RFC 6455's; the protocol is in ds2/serve/__init__.py)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_websocket import WebSocketError

NORMAL, GOING_AWAY, POLICY, TOO_BIG, SERVER_ERROR, TRY_LATER = 1000, 1001, 1008, 1009, 1011, 1013
CLOSE_TIMEOUT = 2.0  # seconds the server's close waits for the client's answering close frame


@dataclass
class Limits:
    max_streams: int = 32  # WebSocket streams at once; the next is refused (1013)
    max_seconds: float = 120.0  # audio per stream or upload
    idle_timeout: float = 20.0  # seconds without a message before the server closes the stream (1001)
    min_rate: float = 0.5  # seconds of audio a stream must send per second the server waits for it (1008) ...
    rate_grace: float = 10.0  # ... once the server has waited this long
    max_message_bytes: int = 1 << 20  # one WebSocket message (1009)
    max_upload_bytes: int = 50 << 20  # one uploaded file (413)
    upload_timeout: float = 120.0  # seconds to send an uploaded file (408)
    header_timeout: float = 10.0  # seconds to send a request's line and headers; then the connection is closed
    shutdown_grace: float = 5.0  # seconds the streams in progress get to end on SIGTERM; then 1001


class StreamError(Exception):
    """A client's mistake or a limit: sent as an error message, then the stream closes with `code`."""

    def __init__(self, message: str, code: int = POLICY):
        super().__init__(message)
        self.code = code


@dataclass
class Pace:
    """How fast a stream's audio arrives: after the server has waited `grace` s for its messages,
    it must have sent `min_rate` s of audio per second waited. The time the server itself spends
    on the stream's audio does not count, so a busy server does not blame its clients."""

    min_rate: float
    grace: float
    audio: float = 0.0  # seconds of audio received
    waited: float = 0.0  # seconds the server has waited for the stream's messages

    def slack(self) -> float:
        """How long the server may still wait for the next message before the stream is too slow."""
        return max(self.grace, self.audio / self.min_rate) - self.waited if self.min_rate else math.inf

    def error(self) -> StreamError:
        return StreamError(f"the audio arrives too slowly: {self.audio:.2f} s of audio in {self.waited:.1f} s "
                           f"(at least {self.min_rate:g} s a second after the first {self.grace:g} s)")


class WebSocket(web.WebSocketResponse):
    """aiohttp's WebSocketResponse, but a message over `max_msg_size` closes with a 1009 that the
    client sees.

    aiohttp sends its 1009 close frame as soon as the message's header announces its size, and
    closes the connection at once, while the client is still sending the message: the kernel then
    resets the connection, and the client, its close frame lost, sees 1006. Here the connection
    stays open (what arrives is discarded) until the client has closed it or `linger` ends."""

    def _close_transport(self) -> None:
        if not self.too_big:
            super()._close_transport()

    @property
    def too_big(self) -> bool:
        reader = getattr(self, "_reader", None)  # aiohttp's own (3.14); without it, no 1009 to wait for
        exc = reader.exception() if reader is not None else None
        return isinstance(exc, WebSocketError) and exc.code == TOO_BIG

    async def linger(self, request: web.Request, seconds: float = 5.0) -> None:
        """After a message over the size limit: wait until the client closes (at most `seconds`)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while request.transport is not None and not request.transport.is_closing() and loop.time() < end:
            await asyncio.sleep(0.05)
