"""An HTTP server on 127.0.0.1 serving a folder: what the download stages are tested against.

It answers a byte range (`Range: bytes=N-`) with 206 and the rest of the file, or 416 where N is
past its end, as OpenSLR does; `ignore_ranges=True` serves a mirror that ignores ranges (200 and
the whole file, as Python's own SimpleHTTPRequestHandler does)."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    ignore_ranges = False

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if self.ignore_ranges or not m or not os.path.isfile(path):
            return super().send_head()
        start, size = int(m.group(1)), os.path.getsize(path)
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f


class _RangeIgnoringHandler(_QuietHandler):
    ignore_ranges = True


@contextlib.contextmanager
def serving(root: Path, ignore_ranges: bool = False) -> Iterator[str]:
    """Serve `root` on a free port of 127.0.0.1 while the block runs; yields its base URL."""
    handler = _RangeIgnoringHandler if ignore_ranges else _QuietHandler
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
