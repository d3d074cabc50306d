"""AISHELL-1 (OpenSLR 33): 178 hours of Mandarin read speech by 400 speakers, 16 kHz.

Download and untar it (`<base-url>/33/data_aishell.tgz` and `resource_aishell.tgz`, then the
per-speaker `data_aishell/wav/<speaker>.tar.gz` inside, as Lhotse's `download_aishell` lays it
out), or take a copy already on disk; read every WAV's header, then write every transcript as the
`char-zh` tokens spell it (`normalize_mandarin`: the word-segmenting spaces and any punctuation
removed, Latin letters upper-cased). A transcript that cannot be spelled in characters (an Arabic
digit, another script) is dropped with its recording, and so are a recording without a
transcript, a WAV that cannot be read (named) and a transcript line without a WAV; each is
counted in one log line. A speaker archive left tarred in a copy on disk stops the preparation
with the command that untars it.

Writes `aishell_{recordings,supervisions}_{train,dev,test}.jsonl.gz`, the names `egs/asr.sh`
reads with prefix=aishell, and `aishell_words_train.txt`: the training transcripts with AISHELL-1's
own word segmentation (words between spaces, each normalised alike), the text of the word LM.

Entry point: `ds2 prepare aishell data/manifests --download-dir data/download` (or
`--corpus-dir /path/to/aishell`); see `ds2 prepare aishell --help`.
"""

from __future__ import annotations

import gzip
import logging
import tarfile
import zlib
from pathlib import Path

from ds2.atomic import write_text_atomic
from ds2.corpora import NAMED, CorpusError, download_archive, gzip_error, one_line, untar
from ds2.corpora.manifests import Utterance, finish_split
from ds2.text import normalize_mandarin

DEFAULT_BASE_URL = "https://www.openslr.org/resources"
ARCHIVES = ("data_aishell.tgz", "resource_aishell.tgz")
SPLITS = ("train", "dev", "test")
PREFIX = "aishell"
TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"

log = logging.getLogger(__name__)


def archive_url(base_url: str, name: str) -> str:
    """The OpenSLR address of one archive."""
    return f"{base_url.rstrip('/')}/33/{name}"


def _untar_speakers(wav: Path, archive: Path, url: str) -> None:
    """Untar the speaker archives of `wav` (untarred from `archive`) there. A damaged one is a
    CorpusError naming it: `archive` is damaged (get it again) or, complete, damaged at `url`."""
    for inner in sorted(wav.glob("*.tar.gz")):
        try:
            untar(inner, wav)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            damaged = gzip_error(archive)
            if damaged:
                raise EOFError(damaged) from None  # the outer archive: delete it and run again
            raise CorpusError(f"{inner} (untarred from {archive}) is not a complete tar.gz archive ({one_line(e)}), "
                              f"though {archive} is: the copy at {url} is damaged - download it from another "
                              f"mirror (--base-url)") from None


def download_aishell(download_dir: str | Path, base_url: str = DEFAULT_BASE_URL) -> Path:
    """Download and untar AISHELL-1 into `download_dir` (the archives there, the corpus in
    `download_dir/aishell`); returns the corpus folder, which holds `data_aishell/`.

    An archive already untarred (its `.completed` marker) is not fetched again, and a partly
    downloaded one is resumed. A failed download raises CorpusError naming the URL, or the
    archive that is damaged (a speaker's archive inside data_aishell.tgz too).
    """
    download_dir = Path(download_dir)
    corpus_dir = download_dir / PREFIX
    for name in ARCHIVES:
        url, archive, untarred = archive_url(base_url, name), download_dir / name, corpus_dir / name[:-4]
        wav = untarred / "wav"
        download_archive(url, archive, corpus_dir, untarred / ".completed", untarred,
                         then=(lambda: _untar_speakers(wav, archive, url)) if name == ARCHIVES[0] else None)
    return corpus_dir


def _tarred_speakers(wav: Path) -> list[str]:
    """The speaker archives in `wav` (or in a split's folder there) whose speaker has no folder of
    WAVs: left tarred. Paths relative to `wav`."""
    tars = sorted(wav.glob("*.tar.gz")) + sorted(wav.glob("*/*.tar.gz"))
    return [str(t.relative_to(wav)) for t in tars
            if not any((wav / split / t.name[:-len(".tar.gz")]).is_dir() for split in SPLITS)]


def _untar_hint(wav: Path, names: list[str]) -> str:
    """What to run to untar the speaker archives `names` of `wav`."""
    listed = ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")
    command = f"tar xzf {names[0]}" if len(names) == 1 else \
        f"for f in {' '.join(names) if len(names) <= NAMED else '*.tar.gz */*.tar.gz'}; do tar xzf \"$f\"; done"
    return (f"{wav} holds {len(names)} speaker archive{'s' if len(names) > 1 else ''} not untarred ({listed}): "
            f"untar {'them' if len(names) > 1 else 'it'} there first, `cd {wav} && {command}`")


def check_corpus(corpus_dir: str | Path) -> Path:
    """The folder holding `data_aishell/` of an AISHELL-1 copy on disk (`corpus_dir` itself, or
    its parent when `corpus_dir` is `data_aishell`); CorpusError naming what is missing, or the
    speaker archives left tarred and how to untar them."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"the AISHELL-1 folder {corpus_dir} does not exist")
    if not (corpus_dir / "data_aishell").is_dir() and corpus_dir.name == "data_aishell":
        corpus_dir = corpus_dir.parent
    required = [f"data_aishell/wav/{s}" for s in SPLITS] + [TRANSCRIPT]
    missing = [r for r in required if not (corpus_dir / r).exists()]
    wav = corpus_dir / "data_aishell" / "wav"
    tarred = _tarred_speakers(wav) if wav.is_dir() else []
    if missing:
        hint = f" ({_untar_hint(wav, tarred)})" if tarred and any(m.startswith("data_aishell/wav/") for m in missing) \
            else ""
        raise CorpusError(f"{corpus_dir} is not a copy of AISHELL-1: missing {', '.join(missing)}{hint}")
    if tarred:
        raise CorpusError(f"{corpus_dir} is a copy of AISHELL-1 with speakers left out: {_untar_hint(wav, tarred)}")
    return corpus_dir


def _transcripts(corpus_dir: Path) -> dict[str, list[str]]:
    """utterance id -> the words of its transcript line."""
    with open(corpus_dir / TRANSCRIPT, encoding="utf-8") as f:
        return {uid: words for uid, *words in (line.split() for line in f) if words}


def segmented_transcripts(corpus_dir: Path) -> dict[str, str]:
    """utterance id -> its transcript's words, each normalised by `normalize_mandarin` (punctuation
    between words dropped), joined by spaces; lines that cannot be spelled are left out."""
    return {uid: " ".join(w for w in map(normalize_mandarin, words) if w)
            for uid, words in _transcripts(corpus_dir).items() if normalize_mandarin(" ".join(words)) is not None}


def _named(ids: list[str]) -> str:
    return f" ({', '.join(ids[:NAMED])}{f' and {len(ids) - NAMED} more' if len(ids) > NAMED else ''})" if ids else ""


def prepare_aishell(corpus_dir: str | Path, output_dir: str | Path, num_jobs: int = 1) -> dict[str, Path]:
    """Write the normalised manifests of train, dev and test into `output_dir` (each atomically),
    and the word-segmented training transcripts (`aishell_words_train.txt`); returns
    {"recordings_train": path, ..., "words_train": path}. `num_jobs` threads read the WAV headers."""
    corpus_dir = check_corpus(corpus_dir).resolve()  # absolute audio paths: manifests work from any folder
    output_dir = Path(output_dir)
    transcripts = {uid: " ".join(words) for uid, words in _transcripts(corpus_dir).items()}
    wav_dir = corpus_dir / "data_aishell" / "wav"
    wavs = {split: {p.stem: p for p in sorted((wav_dir / split).rglob("*.wav"))} for split in SPLITS}
    no_wav = sorted(set(transcripts).difference(*wavs.values()))
    if no_wav:
        log.warning("aishell: left out %d transcript line%s without a WAV in %s%s", len(no_wav),
                    "s" if len(no_wav) > 1 else "", wav_dir, _named(no_wav))
    written = {}
    for split in SPLITS:
        utterances = {uid: Utterance(wav, transcripts[uid], wav.parent.name)
                      for uid, wav in wavs[split].items() if uid in transcripts}
        paths, supervisions = finish_split(
            PREFIX, split, wav_dir / split, utterances, output_dir, token_type="char-zh", language="Chinese",
            unspellable="transcripts that cannot be spelled in characters (digits, other scripts)",
            left_out=[f"{len(wavs[split]) - len(utterances)} WAVs without a transcript"], num_jobs=num_jobs)
        written.update(paths)
        if split == "train":
            segmented = segmented_transcripts(corpus_dir)
            path = output_dir / f"{PREFIX}_words_train.txt"
            write_text_atomic(path, "".join(segmented[s.id] + "\n" for s in supervisions if s.id in segmented))
            written["words_train"] = path
    return written
