"""MUSAN (OpenSLR 17): music, speech and noise recordings (16 kHz) for noise augmentation.

Download and untar it (`<base-url>/17/musan.tar.gz`, about 11 GB, as Lhotse's `download_musan`),
or take a copy already on disk; prepare the recordings of the parts asked for with Lhotse
(`prepare_musan`). Writes `musan_recordings_<part>.jsonl.gz`; `ds2 features ... --prefix musan
--recordings-only` gives them features, which training mixes into its batches (`train.noise_cuts`).

Entry point: `ds2 prepare musan data/manifests --download-dir data/download` (or `--corpus-dir
/path/to/musan`); see `ds2 prepare musan --help`.
"""

from __future__ import annotations

from pathlib import Path

from ds2.corpora import CorpusError, download_archive
from ds2.corpora.manifests import log_split, quiet_root_logger, write_manifests

DEFAULT_BASE_URL = "https://www.openslr.org/resources"
PARTS = ("music", "noise", "speech")
PREFIX = "musan"


def archive_url(base_url: str) -> str:
    """The OpenSLR address of the MUSAN archive."""
    return f"{base_url.rstrip('/')}/17/musan.tar.gz"


def download_musan(download_dir: str | Path, base_url: str = DEFAULT_BASE_URL) -> Path:
    """Download and untar MUSAN into `download_dir` (the archive there, the corpus in
    `download_dir/musan`); returns the corpus folder. Once untarred (Lhotse's `.musan_completed`
    marker) it is not fetched again; a partly downloaded archive is resumed. A failed download
    raises CorpusError naming the URL."""
    download_dir = Path(download_dir)
    download_archive(archive_url(base_url), download_dir / "musan.tar.gz", download_dir,
                     download_dir / ".musan_completed")  # Lhotse's download_musan's marker
    return download_dir / PREFIX


def check_corpus(corpus_dir: str | Path, parts: list[str]) -> Path:
    """The MUSAN folder (holding music/, noise/, speech/) of a copy on disk: `corpus_dir` itself, or
    its `musan/` subfolder; CorpusError naming the parts that are missing or hold no WAV."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"the MUSAN folder {corpus_dir} does not exist")
    if not any((corpus_dir / p).is_dir() for p in PARTS) and (corpus_dir / PREFIX).is_dir():
        corpus_dir = corpus_dir / PREFIX
    missing = [p for p in parts if not (corpus_dir / p).is_dir() or next((corpus_dir / p).rglob("*.wav"), None) is None]
    if missing:
        raise CorpusError(f"{corpus_dir} is not a copy of MUSAN: no WAV under {', '.join(p + '/' for p in missing)}")
    return corpus_dir


def prepare_musan(corpus_dir: str | Path, output_dir: str | Path, parts: list[str]) -> dict[str, Path]:
    """Write `musan_recordings_<part>.jsonl.gz` of each part into `output_dir` (atomically); returns
    {"recordings_<part>": path}. Audio paths are absolute, so the manifests work from any folder."""
    from lhotse.recipes.musan import prepare_musan as lhotse_prepare_musan

    corpus_dir = check_corpus(corpus_dir, parts).resolve()
    with quiet_root_logger():
        manifests = lhotse_prepare_musan(corpus_dir, parts=parts)
    written = {}
    for part in parts:
        recordings = manifests[part]["recordings"]
        log_split(f"{PREFIX} {part}", len(recordings), "recordings", sum(r.duration for r in recordings))
        written.update(write_manifests(output_dir, PREFIX, part, recordings))
    return written
