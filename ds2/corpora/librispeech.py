"""LibriSpeech (OpenSLR 12: 960 h of read English audiobooks) and mini-LibriSpeech (OpenSLR 31:
its 5 h train-clean-5 and 2 h dev-clean-2), and LibriSpeech's LM resources (OpenSLR 11).

Download and untar the parts (`<base-url>/12/<part>.tar.gz`, `<base-url>/31/<part>.tar.gz` for
the mini parts; each untars to `LibriSpeech/<part>/<speaker>/<chapter>/` with
`<speaker>-<chapter>-<utt>.flac` and `<speaker>-<chapter>.trans.txt`), or take a copy already on
disk; read every FLAC's header, then write every transcript as the `char-en` tokens spell it
(`normalize_english`: LibriSpeech's upper-case becomes lower-case, apostrophes at word edges go).
A transcript that cannot be spelled with the 28 characters is dropped with its recording, and so
are a FLAC without a transcript line, a transcript line without a FLAC and a FLAC that cannot be
read; each is counted in one log line per part (the unreadable files named in one of their own).

Writes `librispeech_{recordings,supervisions}_<part>.jsonl.gz`, the names `egs/asr.sh` reads
with prefix=librispeech (mini-LibriSpeech's parts too: train-clean-5, dev-clean-2).

The LM resources (`download_lm`): the LM corpus `librispeech-lm-norm.txt.gz` (about 800 M
words of upper-case text from 14,500 books, none of the dev or test books), which
`normalize_lm_text` streams into the normalised text an n-gram is trained on, and the official
ARPA n-grams (`3-gram.pruned.1e-7.arpa.gz`, `4-gram.arpa.gz`, ...), which `ds2 lm import` takes.

Entry points: `ds2 prepare librispeech data/manifests --parts dev-clean,test-clean` (or
`--corpus-dir /corpora`), `ds2 prepare librispeech-lm data/manifests --arpa 4-gram.arpa.gz`;
see their --help.
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing as mp
import zlib
from collections import deque
from contextlib import nullcontext
from pathlib import Path

from ds2.atomic import write_atomic
from ds2.corpora import NAMED, CorpusError, download_archive, download_error, fetch, gzip_error
from ds2.corpora.manifests import Utterance, finish_split
from ds2.text import normalize_english

DEFAULT_BASE_URL = "https://www.openslr.org/resources"
LIBRISPEECH_PARTS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
                     "test-clean", "test-other")  # OpenSLR 12
MINI_PARTS = ("train-clean-5", "dev-clean-2")  # OpenSLR 31
PARTS = LIBRISPEECH_PARTS + MINI_PARTS
LM_TEXT = "librispeech-lm-norm.txt.gz"
LM_RESOURCES = (LM_TEXT, "3-gram.arpa.gz", "3-gram.pruned.1e-7.arpa.gz", "3-gram.pruned.3e-7.arpa.gz",
                "4-gram.arpa.gz")  # what OpenSLR 11 serves of them
PREFIX = "librispeech"
NORMALISED_LM_TEXT = f"{PREFIX}_lm_text.txt.gz"  # what normalize_lm_text writes into the output folder

log = logging.getLogger(__name__)


def part_url(base_url: str, part: str) -> str:
    """The OpenSLR address of one part's archive, as download_librispeech forms it."""
    return f"{base_url.rstrip('/')}/{31 if part in MINI_PARTS else 12}/{part}.tar.gz"


def lm_url(base_url: str, name: str) -> str:
    """The OpenSLR address of one LM resource."""
    return f"{base_url.rstrip('/')}/11/{name}"


def check_parts(parts: list[str] | tuple[str, ...]) -> list[str]:
    """`parts` without repeats; CorpusError naming any that is not a part of LibriSpeech or mini-LibriSpeech."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise CorpusError(f"{'no part given' if not parts else 'unknown part ' + ', '.join(unknown)}: the parts "
                          f"are {', '.join(LIBRISPEECH_PARTS)} (LibriSpeech) and {', '.join(MINI_PARTS)} "
                          f"(mini-LibriSpeech)")
    return list(dict.fromkeys(parts))


def download_librispeech(download_dir: str | Path, parts: list[str], base_url: str = DEFAULT_BASE_URL) -> Path:
    """Download and untar `parts` into `download_dir` (the archives there, the corpus in
    `download_dir/LibriSpeech/<part>`); returns `download_dir`, the folder holding LibriSpeech/.

    A part already untarred (its `.completed` marker) is not fetched again, and a partly
    downloaded archive is resumed. A failed download raises CorpusError naming the URL.
    """
    parts, download_dir = check_parts(parts), Path(download_dir)
    for part in parts:
        untarred = download_dir / "LibriSpeech" / part
        download_archive(part_url(base_url, part), download_dir / f"{part}.tar.gz", download_dir,
                         untarred / ".completed", untarred)
    return download_dir


def check_corpus(corpus_dir: str | Path, parts: list[str]) -> Path:
    """The `LibriSpeech` folder of a copy on disk (`corpus_dir/LibriSpeech`, or `corpus_dir` itself
    when it is that folder) holding `parts`, each chapter folder with its transcript; CorpusError
    naming what is missing."""
    parts, corpus_dir = check_parts(parts), Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"the LibriSpeech folder {corpus_dir} does not exist")
    root = corpus_dir if corpus_dir.name == "LibriSpeech" and not (corpus_dir / "LibriSpeech").is_dir() \
        else corpus_dir / "LibriSpeech"
    missing = []
    for part in parts:
        if not (root / part).is_dir():
            missing.append(f"LibriSpeech/{part}")
            continue
        chapters = [c for c in sorted((root / part).glob("*/*")) if c.is_dir()]
        if not chapters:
            missing.append(f"LibriSpeech/{part}/<speaker>/<chapter>/")
        for chapter in chapters:
            transcript = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
            if not transcript.is_file():
                missing.append(str(transcript.relative_to(root.parent)))
    if missing:
        hint = ""
        tarred = [p for p in parts if f"LibriSpeech/{p}" in missing and (root.parent / f"{p}.tar.gz").is_file()]
        if tarred:
            hint = f" ({root.parent} holds {', '.join(f'{p}.tar.gz' for p in tarred)}: untar it there first)"
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CorpusError(f"{corpus_dir} is not a copy of LibriSpeech with {', '.join(parts)}: missing {shown}{hint}")
    return root


def prepare_librispeech(corpus_dir: str | Path, output_dir: str | Path, parts: list[str],
                        num_jobs: int = 1) -> dict[str, Path]:
    """Write the normalised manifests of `parts` from the copy in `corpus_dir` (the folder holding
    LibriSpeech/, as `check_corpus` takes it) into `output_dir`, each atomically; returns
    {"recordings_dev-clean": path, ...}. `num_jobs` threads read the FLAC headers."""
    root = check_corpus(corpus_dir, parts).resolve()  # absolute audio paths: manifests work from any folder
    parts, output_dir = check_parts(parts), Path(output_dir)
    written = {}
    for part in parts:
        lines = {}  # utterance id -> its transcript line's text
        for transcript in sorted((root / part).glob("*/*/*.trans.txt")):
            for line in transcript.read_text(encoding="utf-8").splitlines():
                uid, _, text = line.strip().partition(" ")
                if uid:
                    lines[uid] = text
        flacs = {uid: root / part / "/".join(uid.split("-")[:2]) / f"{uid}.flac" for uid in lines}
        no_flac = sorted(uid for uid, path in flacs.items() if not path.is_file())
        utterances = {uid: Utterance(flacs[uid], text, uid.split("-")[0])
                      for uid, text in lines.items() if uid not in no_flac}
        num_flacs = sum(1 for _ in (root / part).rglob("*.flac"))
        left_out = [f"{num_flacs - len(lines) + len(no_flac)} FLACs without a transcript line",
                    f"{len(no_flac)} transcript lines without a FLAC"
                    + (f" ({', '.join(no_flac[:NAMED])}{' ...' if len(no_flac) > NAMED else ''})" if no_flac else "")]
        paths, _ = finish_split(PREFIX, part, root / part, utterances, output_dir, token_type="char-en",
                                language="English", unspellable="transcripts that cannot be spelled with the 28 "
                                "characters", left_out=left_out, num_jobs=num_jobs)
        written.update(paths)
    return written


# -- the LM resources (OpenSLR 11) ---------------------------------------------------------------


def _check_gzip(path: Path, url: str) -> None:
    """Read `path` through to its end: a mirror's error page or a download cut short fails here,
    not hours later in lmplz or build_binary."""
    why = gzip_error(path)
    if why:
        raise CorpusError(f"{path} (from {url}) is not a complete gzip file ({why}): delete it and run again")


def download_lm(download_dir: str | Path, names: list[str], base_url: str = DEFAULT_BASE_URL) -> dict[str, Path]:
    """Download the OpenSLR 11 files `names` (of LM_RESOURCES) into `download_dir`; returns {name: path}.

    A file is checked to be a complete gzip file, then marked done (`.<name>.completed`) and not
    fetched again; a partly downloaded one is resumed. CorpusError names the URL that failed.
    """
    unknown = [n for n in names if n not in LM_RESOURCES]
    if unknown:
        raise CorpusError(f"unknown LM resource {', '.join(unknown)}: OpenSLR 11 serves {', '.join(LM_RESOURCES)}")
    download_dir = Path(download_dir)
    download_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in dict.fromkeys(names):
        path, done, url = download_dir / name, download_dir / f".{name}.completed", lm_url(base_url, name)
        if not done.is_file():
            try:
                fetch(url, path)
            except Exception as e:
                error = download_error(e, url, path, download_dir)
                if error is None:
                    raise
                raise error from None
            _check_gzip(path, url)
            done.touch()
        paths[name] = path
    return paths


def _normalize_lines(lines: list[str]) -> tuple[list[str], int, str | None]:
    """(normalised lines, how many were dropped, the first dropped one)."""
    kept, dropped, example = [], 0, None
    for line in lines:
        text = normalize_english(line)
        if text is None:
            if line.strip():
                dropped += 1
                example = example or line.strip()
        else:
            kept.append(text)
    return kept, dropped, example


def _chunks(lines, size: int):
    chunk = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ordered_map(pool, fn, items, ahead: int):
    """fn over items in `pool`, in order, with at most `ahead` items in flight (Pool.imap would
    read the whole input at once)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.apply_async(fn, (item,)))
        if len(pending) > ahead:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def normalize_lm_text(src: str | Path, dst: str | Path, num_jobs: int = 1,
                      chunk_lines: int = 20_000) -> tuple[int, int]:
    """Write the sentences of `src` (LibriSpeech's upper-case LM corpus, gzipped) as the `char-en`
    tokens spell them (`normalize_english`) into `dst` (gzipped, atomically); a sentence that cannot
    be spelled is dropped. Streams both files: a few chunks of `chunk_lines` lines in memory at
    once, normalised by `num_jobs` processes. Returns (sentences kept, sentences dropped)."""
    src, dst = Path(src), Path(dst)
    counts = {"kept": 0, "dropped": 0, "example": None}

    def write(tmp: Path):
        with gzip.open(src, "rt", encoding="utf-8") as f, \
                gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as out, \
                (mp.get_context("fork").Pool(num_jobs) if num_jobs > 1 else nullcontext()) as pool:
            chunks = _chunks(f, chunk_lines)
            results = map(_normalize_lines, chunks) if num_jobs <= 1 else \
                _ordered_map(pool, _normalize_lines, chunks, 2 * num_jobs)
            for lines, dropped, example in results:
                out.write("".join(ln + "\n" for ln in lines))
                counts["kept"] += len(lines)
                counts["dropped"] += dropped
                counts["example"] = counts["example"] or example

    try:
        write_atomic(dst, write)
    except (OSError, EOFError, zlib.error) as e:
        raise CorpusError(f"cannot read {src} through ({' '.join(str(e).split())}): delete it and its "
                          f".completed marker and run again") from None
    kept, dropped, example = counts["kept"], counts["dropped"], counts["example"]
    log.info("%s: %d sentences; left out: %d that cannot be spelled with the 28 characters%s", dst.name, kept,
             dropped, f", e.g. {example!r}" if example else "")
    if kept < 2:
        raise CorpusError(f"{src} holds {kept} sentence(s) that the 28 characters spell: an n-gram needs two or more")
    return kept, dropped
