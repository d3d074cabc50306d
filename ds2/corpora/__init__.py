"""Corpora that Lhotse does not prepare itself, and what their download stages share: the
one-line error of a download or a corpus copy that cannot be used."""

from __future__ import annotations

import gzip
import logging
import tarfile
import urllib.error
import zlib
from contextlib import contextmanager
from pathlib import Path


class CorpusError(RuntimeError):
    """A download or a corpus copy that cannot be used; the message is one line for the user."""


def download_error(e: BaseException, url: str, archive: Path, download_dir: Path) -> CorpusError | None:
    """The one-line CorpusError of a failed download of `url` into `archive` (an HTTP error, no
    connection, a file that is not a complete tar.gz, a full disk...), or None for an exception
    that is a bug, not a download failure. Removes the empty file an HTTP error leaves, which a
    later run would otherwise try to resume."""
    archive = Path(archive)
    if archive.is_file() and archive.stat().st_size == 0:
        archive.unlink()
    if isinstance(e, urllib.error.HTTPError):
        return CorpusError(f"cannot download {url}: HTTP {e.code} {e.reason}")
    if isinstance(e, urllib.error.URLError):
        return CorpusError(f"cannot download {url}: {e.reason}")
    why = " ".join(str(e).split())  # tarfile's messages span lines
    if isinstance(e, (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)):
        return CorpusError(f"{archive} (from {url}) is not a complete tar.gz archive ({why}): delete it and run again")
    if isinstance(e, OSError):
        return CorpusError(f"downloading or untarring {url} into {download_dir} failed: {why}")
    return None


@contextmanager
def quiet_root_logger():
    """Lhotse's recipes warn through the root logger once per file they skip (hundreds of lines
    on a real corpus); the preparations count those and log one line per set instead."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
