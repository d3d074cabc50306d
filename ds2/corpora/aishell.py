"""AISHELL-1 (OpenSLR 33): 178 hours of Mandarin read speech by 400 speakers, 16 kHz.

Download and untar it with Lhotse (`download_aishell`: `<base-url>/33/data_aishell.tgz` and
`resource_aishell.tgz`, then the per-speaker `data_aishell/wav/<speaker>.tar.gz` inside), or
take a copy already on disk; prepare it with Lhotse (`prepare_aishell`), then write every
transcript as the `char-zh` tokens spell it (`normalize_mandarin`: the word-segmenting spaces
and any punctuation removed, Latin letters upper-cased). A transcript that cannot be spelled in
characters (an Arabic digit, another script) is dropped with its recording, and so is a
recording without a transcript; each is counted in one log line per set.

Writes `aishell_{recordings,supervisions}_{train,dev,test}.jsonl.gz`, the names `egs/asr.sh`
reads with prefix=aishell, and `aishell_words_train.txt`: the training transcripts with AISHELL-1's
own word segmentation (words between spaces, each normalised alike), the text of the word LM.

Entry point: `ds2 prepare aishell data/manifests --download-dir data/download` (or
`--corpus-dir /path/to/aishell`); see `ds2 prepare aishell --help`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ds2.atomic import write_atomic, write_text_atomic
from ds2.corpora import CorpusError, download_error, quiet_root_logger
from ds2.text import normalize_mandarin

DEFAULT_BASE_URL = "https://www.openslr.org/resources"
ARCHIVES = ("data_aishell.tgz", "resource_aishell.tgz")  # what download_aishell fetches, in its order
SPLITS = ("train", "dev", "test")
PREFIX = "aishell"
TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"

log = logging.getLogger(__name__)


def archive_url(base_url: str, name: str) -> str:
    """The OpenSLR address of one archive, as download_aishell forms it."""
    return f"{base_url.rstrip('/')}/33/{name}"


def download(download_dir: str | Path, base_url: str = DEFAULT_BASE_URL) -> Path:
    """Download and untar AISHELL-1 into `download_dir` (the archives there, the corpus in
    `download_dir/aishell`); returns the corpus folder, which holds `data_aishell/`.

    An archive already untarred (its `.completed` marker) is not fetched again, and a partly
    downloaded one is resumed. A failed download raises CorpusError naming the URL.
    """
    from lhotse.recipes.aishell import download_aishell

    download_dir = Path(download_dir)
    try:
        return download_aishell(download_dir, base_url=base_url.rstrip("/"))
    except Exception as e:
        # download_aishell fetches the archives in ARCHIVES order and marks each one done once it
        # is untarred: the first one without its marker is the one that failed
        name = next((n for n in ARCHIVES if not (download_dir / PREFIX / n[:-4] / ".completed").is_file()),
                    ARCHIVES[-1])
        error = download_error(e, archive_url(base_url, name), download_dir / name, download_dir)
        if error is None:
            raise
        raise error from None


def check_corpus(corpus_dir: str | Path) -> Path:
    """The folder holding `data_aishell/` of an AISHELL-1 copy on disk (`corpus_dir` itself, or
    its parent when `corpus_dir` is `data_aishell`); CorpusError naming what is missing."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"the AISHELL-1 folder {corpus_dir} does not exist")
    if not (corpus_dir / "data_aishell").is_dir() and corpus_dir.name == "data_aishell":
        corpus_dir = corpus_dir.parent
    required = [f"data_aishell/wav/{s}" for s in SPLITS] + [TRANSCRIPT]
    missing = [r for r in required if not (corpus_dir / r).exists()]
    if missing:
        hint = ""
        wav = corpus_dir / "data_aishell" / "wav"
        speaker_tars = sorted(wav.glob("*.tar.gz")) if wav.is_dir() else []
        if speaker_tars and any(m.startswith("data_aishell/wav/") for m in missing):
            hint = (f" ({wav} holds {len(speaker_tars)} speaker archives: untar them there first, "
                    f"`cd {wav} && for f in *.tar.gz; do tar xzf \"$f\"; done`)")
        raise CorpusError(f"{corpus_dir} is not a copy of AISHELL-1: missing {', '.join(missing)}{hint}")
    return corpus_dir


def segmented_transcripts(corpus_dir: Path) -> dict[str, str]:
    """utterance id -> its transcript's words, each normalised by `normalize_mandarin` (punctuation
    between words dropped), joined by spaces; lines that cannot be spelled are left out."""
    words = {}
    with open(corpus_dir / TRANSCRIPT, encoding="utf-8") as f:
        for line in f:
            uid, *tokens = line.split()
            if not tokens or normalize_mandarin(" ".join(tokens)) is None:
                continue
            words[uid] = " ".join(w for w in map(normalize_mandarin, tokens) if w)
    return words


def prepare(corpus_dir: str | Path, output_dir: str | Path) -> dict[str, Path]:
    """Write the normalised manifests of train, dev and test into `output_dir` (each atomically),
    and the word-segmented training transcripts (`aishell_words_train.txt`); returns
    {"recordings_train": path, ..., "words_train": path}."""
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes.aishell import prepare_aishell

    corpus_dir = check_corpus(corpus_dir).resolve()  # absolute audio paths: manifests work from any folder
    output_dir = Path(output_dir)
    with quiet_root_logger():  # it warns twice per WAV without a transcript
        manifests = prepare_aishell(corpus_dir)
    written = {}
    for split in SPLITS:
        recordings, supervisions = manifests[split]["recordings"], manifests[split]["supervisions"]
        num_wavs = sum(1 for _ in (corpus_dir / "data_aishell" / "wav" / split).rglob("*.wav"))
        kept, dropped = [], []
        for sup in supervisions:
            text = normalize_mandarin(sup.text)
            if text is None:
                dropped.append(sup)
            else:
                kept.append(replace(sup, text=text))
        if not kept:
            raise CorpusError(f"{corpus_dir / 'data_aishell' / 'wav' / split} holds no utterance with a usable "
                              f"transcript in {TRANSCRIPT}")
        ids = {s.recording_id for s in kept}
        recs = RecordingSet.from_recordings(r for r in recordings if r.id in ids)
        sups = SupervisionSet.from_segments(kept)
        log.info("aishell %s: %d utterances, %.2f hours; left out: %d WAVs without a transcript, %d transcripts "
                 "that cannot be spelled in characters (digits, other scripts)%s", split, len(sups),
                 sum(r.duration for r in recs) / 3600, num_wavs - len(recordings), len(dropped),
                 f", e.g. {dropped[0].id} {dropped[0].text!r}" if dropped else "")
        for kind, items in (("recordings", recs), ("supervisions", sups)):
            path = output_dir / f"{PREFIX}_{kind}_{split}.jsonl.gz"
            write_atomic(path, items.to_file)
            written[f"{kind}_{split}"] = path
        if split == "train":
            segmented = segmented_transcripts(corpus_dir)
            path = output_dir / f"{PREFIX}_words_train.txt"
            write_text_atomic(path, "".join(segmented[s.id] + "\n" for s in sups if s.id in segmented))
            written["words_train"] = path
    return written
