"""The client's messages of `ds2 serve`'s WebSocket protocol (ds2/serve/__init__.py), parsed and
checked: a StreamError (closed with 1008) for anything malformed."""

from __future__ import annotations

import json

import numpy as np
from aiohttp import WSMsgType

from ds2.serve.limits import StreamError

FORMATS = {"pcm16": (np.dtype("<i2"), 1 / 32768.0), "float32": (np.dtype("<f4"), 1.0)}
MIN_RATE, MAX_RATE = 8000, 192000


def parse_start(msg) -> tuple[np.dtype, float, int]:
    """The stream's sample format, scale and rate from its first message."""
    if msg.type != WSMsgType.TEXT:
        raise StreamError('the first message must be text: {"type": "start", "sample_rate": ..., '
                          '"format": "pcm16"}')
    try:
        start = json.loads(msg.data)
    except ValueError:
        raise StreamError("the first message is not JSON") from None
    if not isinstance(start, dict) or start.get("type") != "start":
        raise StreamError('the first message must be {"type": "start", ...}')
    rate, fmt = start.get("sample_rate"), start.get("format", "pcm16")
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise StreamError(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, not {rate!r}")
    if fmt not in FORMATS:
        raise StreamError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    dtype, scale = FORMATS[fmt]
    return dtype, scale, rate


def audio_samples(data: bytes, dtype: np.dtype, scale: float) -> np.ndarray:
    """An audio message's samples as float32."""
    if len(data) % dtype.itemsize:
        raise StreamError(f"an audio message of {len(data)} bytes is not whole {dtype.itemsize}-byte samples")
    x = np.frombuffer(data, dtype=dtype).astype(np.float32) * np.float32(scale)
    if not np.all(np.isfinite(x)):
        raise StreamError("the audio holds NaN or infinite samples")
    return x


def message_type(text: str):
    """The `type` of a text message after `start` (None where it has none)."""
    try:
        message = json.loads(text)
    except ValueError:
        raise StreamError("a text message is not JSON") from None
    return message.get("type") if isinstance(message, dict) else None
