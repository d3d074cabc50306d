"""WAV files shorter than their header says (a copy cut short): soundfile reads the samples that
are there without a word, so preparation and `ds2 features` look at the header themselves."""

from __future__ import annotations

import struct
from pathlib import Path


def wav_truncation(path: Path) -> str | None:
    """How much shorter a WAV file is than its header says ("header 2.81 s, file 0.93 s"), or None
    (not a WAV, complete, or a size left open as streaming writers do)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size, offset, byte_rate = path.stat().st_size, 12, 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = f.read(12)
                byte_rate = struct.unpack("<I", fmt[8:12])[0] if len(fmt) == 12 else 0
            elif name == b"data":
                present = size - offset - 8
                if length in (0, 0xFFFFFFFF) or present >= length:
                    return None
                if not byte_rate:
                    return f"header {length} bytes of samples, file {present}"
                return f"header {length / byte_rate:.2f} s, file {present / byte_rate:.2f} s"
            offset += 8 + length + (length & 1)
            f.seek(offset)
