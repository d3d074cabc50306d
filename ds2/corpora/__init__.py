"""The corpora: each `ds2/corpora/<name>.py` in Lhotse's shape (`download_<name>`, `check_corpus`,
`prepare_<name>`), run by `ds2 prepare <name>`; the shared step after reading a corpus (normalise,
drop and count, read the audio, log, write the manifests) is `ds2.corpora.manifests`.

Here: what the downloads share: downloads that resume (and start again from zero where a mirror
ignores byte ranges), archives untarred once, and the one-line error of a download or a corpus
copy that cannot be used."""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

NAMED = 5  # files or ids named per kind in a log line
CHUNK = 1 << 20
TIMEOUT = 120  # seconds a mirror may keep silent (connecting, or mid-download) before the download fails
USER_AGENT = "Mozilla/5.0 (compatible; ds2)"  # some mirrors answer Python-urllib's own with 403, as Lhotse found


class CorpusError(RuntimeError):
    """A download or a corpus copy that cannot be used; the message is one line for the user."""


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__  # tarfile's and Lhotse's messages span lines


def download_error(e: BaseException, url: str, archive: Path, download_dir: Path) -> CorpusError | None:
    """The one-line CorpusError of a failed download of `url` into `archive` (an HTTP error, no
    connection, a file that is not a complete tar.gz, a full disk...), or None for an exception
    that is a bug, not a download failure. Removes the empty file an HTTP error leaves, which a
    later run would otherwise try to resume."""
    archive = Path(archive)
    if archive.is_file() and archive.stat().st_size == 0:
        archive.unlink()
    if isinstance(e, CorpusError):
        return e
    if isinstance(e, urllib.error.HTTPError):
        return CorpusError(f"cannot download {url}: HTTP {e.code} {e.reason}")
    if isinstance(e, urllib.error.URLError):
        return CorpusError(f"cannot download {url}: {e.reason}")
    if isinstance(e, (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)):
        return CorpusError(f"{archive} (from {url}) is not a complete tar.gz archive ({one_line(e)}): "
                           f"delete it and run again")
    if isinstance(e, OSError):
        return CorpusError(f"downloading or untarring {url} into {download_dir} failed: {one_line(e)}")
    return None


def fetch(url: str, path: str | Path) -> None:
    """Download `url` into `path`, resuming a partial file: a byte range from its size on. A
    mirror that ignores the range (200 and the whole file) or whose file is not that size (416)
    is downloaded again from the start, never appended to what is there."""
    from tqdm.auto import tqdm

    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={size}-"} if size else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not size:
            raise
        if e.headers.get("Content-Range", "") == f"bytes */{size}":
            return  # downloaded to its end already
        log.warning("%s is longer than %s: downloading it again from the start", path, url)
        path.unlink()
        return fetch(url, path)
    with response, open(path, "r+b" if size else "wb") as f:
        start = 0
        if response.status == 206:
            m = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            start = int(m.group(1)) if m else size
        elif size:
            log.warning("%s: the server of %s ignores byte ranges: downloading it again from the start", path, url)
        f.seek(start)
        f.truncate()
        total = start + int(response.headers.get("Content-Length", 0))
        with tqdm(total=total or None, initial=start, unit="B", unit_scale=True, desc=str(path)) as bar:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))


def untar(archive: Path, into: Path) -> None:
    """Untar `archive` into `into`, refusing members that would land outside it."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def download_archive(url: str, archive: Path, into: Path, marker: Path, untarred: Path | None = None,
                     then=None) -> None:
    """Download `url` into `archive` and untar it into `into`, then run `then()` (untarring what
    it holds, say) and mark it done (`marker`). Skipped once marked; what a broken try untarred
    (`untarred`) is removed first. A failure is a CorpusError naming the URL or the archive."""
    if marker.is_file():
        return
    into.mkdir(parents=True, exist_ok=True)
    try:
        fetch(url, archive)
        if untarred is not None:
            shutil.rmtree(untarred, ignore_errors=True)
        untar(archive, into)
        if then is not None:
            then()
    except Exception as e:
        error = download_error(e, url, archive, archive.parent)
        if error is None:
            raise
        raise error from None
    marker.touch()


def gzip_error(path: Path) -> str | None:
    """Why `path` is not a complete gzip file (read through to its end: its checksum), or None."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as e:
        return one_line(e)
    return None
