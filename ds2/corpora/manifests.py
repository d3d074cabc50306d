"""The step every corpus shares after its own layout is read (what Lhotse's `prepare_X` leaves to
the recipe): normalise the transcripts for the tokens, drop and count what cannot be used, read
the audio headers (the recordings written are those of the utterances kept), log one line per
split, and write `<prefix>_{recordings,supervisions}_<split>.jsonl.gz` atomically.

- `clean_text`: a transcript as a token type reads it, or why it cannot be used;
- `read_recording(s)`: audio files read (headers), or named as unreadable;
- `log_dropped`: one warning line counting what was dropped and naming the first few;
- `write_manifests`: the manifests of one split;
- `finish_split`: all of it, for a corpus of whole-file utterances (AISHELL-1, LibriSpeech).

`ds2.corpora.mydata` (segments, commands) and `ds2.corpora.musan` (Lhotse's own `prepare_musan`)
use the pieces.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ds2.atomic import write_atomic
from ds2.corpora import NAMED, CorpusError
from ds2.data.wav import wav_truncation
from ds2.text import normalize_english, normalize_mandarin

log = logging.getLogger(__name__)

TOKEN_TYPES = ("char-en", "char-zh", "char", "bpe")
EMPTY, UNSPELLABLE = "empty transcript", "characters the tokens cannot spell"  # why clean_text drops a transcript


# -- text ----------------------------------------------------------------------------------------


def clean_text(text: str | None, token_type: str) -> tuple[str | None, str | None, str]:
    """(text as the tokens read it, None) or (None, EMPTY or UNSPELLABLE, what cannot be spelled):
    `char-en` and `char-zh` normalise (`normalize_english`, `normalize_mandarin`), `char` and `bpe`
    collapse white space (and take Unicode NFC)."""
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token type {token_type!r} is none of {', '.join(TOKEN_TYPES)}")
    raw = " ".join((text or "").split())
    if not raw:
        return None, EMPTY, ""
    normalize = {"char-en": normalize_english, "char-zh": normalize_mandarin}.get(token_type)
    if normalize is None:
        return unicodedata.normalize("NFC", raw), None, ""
    out = normalize(raw)
    if out is not None:
        return out, None, ""
    bad = sorted({c for c in raw if (c.isalnum() or unicodedata.category(c).startswith("M")) and normalize(c) is None})
    if not bad:
        return None, EMPTY, ""  # nothing but punctuation
    return None, UNSPELLABLE, " ".join(bad)


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


# -- dropping, logging, writing ------------------------------------------------------------------


def log_dropped(name: str, what: str, named: list[str], sep: str = ", ", reason: str = "") -> None:
    """One warning line, `<name>: dropped <n> <what>(s)[ with <reason>]: <the first few> and <k> more`
    (nothing when `named` is empty)."""
    if named:
        log.warning("%s: dropped %d %s%s%s: %s%s", name, len(named), what, "s" if len(named) != 1 else "",
                    f" with {reason}" if reason else "", sep.join(named[:NAMED]),
                    f" and {len(named) - NAMED} more" if len(named) > NAMED else "")


def log_split(name: str, count: int, noun: str, seconds: float, left_out: Iterable[str] = ()) -> None:
    """The line of a split written: `<name>: <count> <noun>, <hours> hours[; left out: ...]`."""
    left_out = list(left_out)
    log.info("%s: %d %s, %.2f hours%s", name, count, noun, seconds / 3600,
             f"; left out: {', '.join(left_out)}" if left_out else "")


def write_manifests(output_dir: str | Path, prefix: str, split: str, recordings, supervisions=None) -> dict[str, Path]:
    """Write `<prefix>_recordings_<split>.jsonl.gz` (and `<prefix>_supervisions_<split>.jsonl.gz`
    unless `supervisions` is None) into `output_dir`, each atomically; returns
    {"recordings_<split>": path[, "supervisions_<split>": path]}."""
    written = {}
    for kind, items in (("recordings", recordings), ("supervisions", supervisions)):
        if items is not None:
            written[f"{kind}_{split}"] = Path(output_dir) / f"{prefix}_{kind}_{split}.jsonl.gz"
            write_atomic(written[f"{kind}_{split}"], items.to_file)
    return written


# -- the whole step, for whole-file utterances ---------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One whole-file utterance as a corpus lists it, before any check."""

    audio: Path
    text: str  # as the corpus writes it
    speaker: str


def read_utterances(name: str, audio: Mapping[str, Path], texts: Mapping[str, str], speakers: Mapping[str, str],
                    language: str, num_jobs: int = 1):
    """(RecordingSet, SupervisionSet) of whole-file utterances (id -> audio file, its transcript and
    speaker), sorted by id: a file that cannot be read is dropped with its transcript and named in
    one warning line; CorpusError naming `name` where none can be read."""
    from lhotse import RecordingSet, SupervisionSegment, SupervisionSet

    recordings, unreadable = read_recordings({i: audio[i] for i in sorted(texts)}, num_jobs)
    log_dropped(name, "unreadable audio file", unreadable, sep="; ")
    if not recordings:
        raise CorpusError(f"{name}: none of its {len(unreadable)} audio files with a usable transcript can be read "
                          f"(e.g. {unreadable[0]})" if unreadable else f"{name}: no utterance with a usable transcript")
    return RecordingSet.from_recordings(recordings.values()), SupervisionSet.from_segments(
        SupervisionSegment(id=i, recording_id=i, start=0.0, duration=r.duration, channel=0, language=language,
                           speaker=speakers[i], text=texts[i]) for i, r in recordings.items())


def finish_split(name: str, split: str, where: Path, utterances: Mapping[str, Utterance], output_dir: str | Path,
                 *, token_type: str, language: str, unspellable: str, left_out: Iterable[str] = (),
                 prefix: str | None = None, num_jobs: int = 1):
    """The shared step for one split of whole-file utterances read from `where`: transcripts
    cleaned for `token_type` (one that cannot be used is dropped with its recording and counted as
    `unspellable`, with an example), audio headers read in `num_jobs` threads (an unreadable file
    dropped and named), one log line (`left_out`: the corpus's own counts, before the
    unspellable one), and the manifests written as `<prefix or name>_*_<split>.jsonl.gz`.
    Returns ({"recordings_<split>": path, "supervisions_<split>": path}, the SupervisionSet)."""
    texts = {uid: clean_text(u.text, token_type)[0] for uid, u in utterances.items()}
    dropped = sorted(uid for uid, text in texts.items() if text is None)
    texts = {uid: text for uid, text in texts.items() if text is not None}
    recordings, supervisions = read_utterances(
        f"{name} {split} ({where})", {uid: u.audio for uid, u in utterances.items()}, texts,
        {uid: utterances[uid].speaker for uid in texts}, language, num_jobs)
    example = f", e.g. {dropped[0]} {utterances[dropped[0]].text!r}" if dropped else ""
    log_split(f"{name} {split}", len(supervisions), "utterances", sum(r.duration for r in recordings),
              [*left_out, f"{len(dropped)} {unspellable}{example}"])
    return write_manifests(output_dir, prefix or name, split, recordings, supervisions), supervisions
