"""Corpora that Lhotse does not prepare itself, and what the corpus stages share: downloads
that resume (and start again from zero where a mirror ignores byte ranges), archives untarred
once, audio files read or named as unreadable, and the one-line error of a download or a corpus
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ds2.atomic import write_atomic
from ds2.data.wav import wav_truncation

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


# -- audio files ---------------------------------------------------------------------------------


def short_error(e: BaseException) -> str:
    """One short line of why Lhotse could not read an audio file."""
    text = str(e)
    m = re.search(r"Error opening .*?: (.+)", text)
    return (m.group(1).strip() if m else text.splitlines()[0] if text else type(e).__name__)[:200]


def read_recording(path: str | Path, recording_id: str):
    """The Lhotse Recording of an audio file (its header read), or a string saying why there is
    none: no such file, not audio, no samples, or a WAV shorter than its header says."""
    from lhotse import Recording

    path = Path(path)
    if not path.is_file():
        return f"{path}: no such file"
    try:
        recording = Recording.from_file(path, recording_id=recording_id)
        truncated = wav_truncation(path)
    except Exception as e:  # noqa: BLE001 - every way a file cannot be read is reported, not fatal
        return f"{path}: {short_error(e)}"
    if truncated:
        return f"{path}: truncated ({truncated})"
    if recording.num_samples <= 0:
        return f"{path}: no samples"
    return recording


def read_recordings(paths: dict[str, Path], num_jobs: int = 1) -> tuple[dict, list[str]]:
    """({id: Recording} of the files of `paths` ({id: path}) that can be read, [why] of those
    that cannot), reading headers in `num_jobs` threads."""
    with ThreadPoolExecutor(max(1, num_jobs)) as pool, quiet_root_logger():
        read = dict(zip(paths, pool.map(lambda kv: read_recording(kv[1], kv[0]), paths.items())))
    return ({i: r for i, r in read.items() if not isinstance(r, str)},
            sorted(r for r in read.values() if isinstance(r, str)))


def log_unreadable(name: str, unreadable: list[str]) -> None:
    """One warning line counting the audio files of `name` that cannot be read and naming the first."""
    if unreadable:
        log.warning("%s: dropped %d unreadable audio file%s: %s%s", name, len(unreadable),
                    "s" if len(unreadable) != 1 else "", "; ".join(unreadable[:NAMED]),
                    f" and {len(unreadable) - NAMED} more" if len(unreadable) > NAMED else "")


def read_utterances(name: str, audio: dict[str, Path], texts: dict[str, str], speakers: dict[str, str],
                    language: str, num_jobs: int = 1):
    """(RecordingSet, SupervisionSet) of whole-file utterances (id -> audio file, its transcript and
    speaker), sorted by id: a file that cannot be read is dropped with its transcript and named in
    one warning line; CorpusError naming `name` where none can be read."""
    from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

    recordings, unreadable = read_recordings({i: audio[i] for i in sorted(texts)}, num_jobs)
    log_unreadable(name, unreadable)
    if not recordings:
        raise CorpusError(f"{name}: none of its {len(unreadable)} audio files with a usable transcript can be read "
                          f"(e.g. {unreadable[0]})" if unreadable else f"{name}: no utterance with a usable transcript")
    return RecordingSet.from_recordings(recordings.values()), SupervisionSet.from_segments(
        SupervisionSegment(id=i, recording_id=i, start=0.0, duration=r.duration, channel=0, language=language,
                           speaker=speakers[i], text=texts[i]) for i, r in recordings.items())


def write_manifests(output_dir: Path, prefix: str, split: str, recordings, supervisions) -> dict[str, Path]:
    """Write `<prefix>_{recordings,supervisions}_<split>.jsonl.gz` into `output_dir`, each atomically;
    returns {"recordings_<split>": path, "supervisions_<split>": path}."""
    written = {}
    for kind, items in (("recordings", recordings), ("supervisions", supervisions)):
        written[f"{kind}_{split}"] = Path(output_dir) / f"{prefix}_{kind}_{split}.jsonl.gz"
        write_atomic(written[f"{kind}_{split}"], items.to_file)
    return written


@contextmanager
def quiet_root_logger():
    """Lhotse warns through the root logger once per file it skips or reads with a fallback
    backend (hundreds of lines on a real corpus); the preparations count those and log one
    line per set instead."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
