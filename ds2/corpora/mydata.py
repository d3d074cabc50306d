"""Your own data as Lhotse manifests: per split, a Kaldi data directory or a CSV/TSV file,
checked utterance by utterance.

An input is either
- a Kaldi data directory: `wav.scp` (`<recording-id> <path>`, or `<recording-id> <command> |`
  whose standard output is the audio), `text` (`<utterance-id> <transcript>`), optional
  `segments` (`<utterance-id> <recording-id> <start> <end>`, end -1: to the end of the
  recording) and optional `utt2spk`. Without `segments` every recording is one utterance of
  the same id. A relative path, and a command, is taken from the current folder (as Kaldi does:
  the recipe's folder);
- a CSV file (or TSV: a `.tsv` name or a tab in the header) whose header is
  `audio_path,text[,speaker]`; a relative audio path is relative to the file's folder. An
  utterance's id is its audio file's name without the extension (`<name>-<line>` where a name
  comes twice, made unique where that is another file's name); a file listed twice is named in
  the log.

Audio may be any format Lhotse reads, at any sampling rate, with any number of channels (the
features stage resamples and mixes down). Each utterance is checked, and dropped if
- its audio is missing or unreadable (a missing file, a file that is not audio, a WAV shorter
  than its header says, a command that fails, no samples), or its segment lies outside its
  recording;
- its transcript is empty (or missing, or nothing but punctuation);
- its transcript holds characters the token type cannot spell: `char-en` writes what
  `normalize_english` leaves (lower-case a-z, apostrophe, space; digits and accented letters
  cannot be spelled), `char-zh` what `normalize_mandarin` leaves (Hanzi and Latin letters);
  `char` and `bpe` take any character.
Each kind is counted and its first ids named in one log line per split; a split left with no
utterance stops the preparation with one line saying why, before any manifest is written.
Transcripts are written as the token type reads them: normalised for `char-en` and `char-zh`,
for `char` and `bpe` with white space collapsed (and Unicode NFC).

Entry point: `ds2 prepare mydata data/manifests --train data/train --dev dev.csv --test test.tsv`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import subprocess
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ds2.corpora import NAMED, CorpusError
from ds2.corpora.manifests import (EMPTY, TOKEN_TYPES, UNSPELLABLE, clean_text, log_dropped, quiet_root_logger,
                                   read_recording, short_error, write_manifests)

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("audio_path", "text", "speaker")  # the last one optional
# the kinds of utterance that are dropped, in the order they are checked and logged
UNREADABLE, OUTSIDE = "missing or unreadable audio", "segment outside its recording"
KINDS = (EMPTY, UNSPELLABLE, UNREADABLE, OUTSIDE)
MAX_OVERSHOOT = 0.5  # seconds a segment may end after its recording (cut there), as Kaldi's extract-segments


@dataclass(frozen=True)
class Entry:
    """One utterance as an input lists it, before any check."""

    id: str
    recording_id: str
    audio: str | None  # an absolute path, or a shell command whose standard output is the audio (None: no
    #                    wav.scp line for the recording)
    is_command: bool
    text: str | None  # None: no transcript line
    speaker: str | None = None
    start: float = 0.0
    end: float | None = None  # None: the end of the recording


@dataclass
class Split:
    """The checked utterances of one split: what is kept, and what is dropped (kind -> (id, why))."""

    name: str
    source: Path
    kind: str  # of input: "Kaldi data directory", "CSV file", "TSV file"
    recordings: list = field(default_factory=list)  # lhotse Recording
    supervisions: list = field(default_factory=list)  # lhotse SupervisionSegment
    dropped: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {k: [] for k in KINDS})

    @property
    def total(self) -> int:
        return len(self.supervisions) + sum(len(v) for v in self.dropped.values())


# -- reading the inputs --------------------------------------------------------------------------


def read_input(path: str | Path) -> tuple[list[Entry], str]:
    """The utterances of a Kaldi data directory or a CSV/TSV file, and the format's name."""
    path = Path(path)
    if path.is_dir():
        return read_kaldi_dir(path), "Kaldi data directory"
    if path.is_file():
        return read_table(path), "TSV file" if _is_tsv(path) else "CSV file"
    raise CorpusError(f"{path} does not exist (give a Kaldi data directory or a CSV/TSV file)")


def _read_text(path: Path) -> str:
    """A text file's content; one that is not UTF-8 is a CorpusError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path} is not UTF-8 text (byte {e.start}): convert it, e.g. with iconv -t utf-8") from None


def _kaldi_lines(path: Path, min_fields: int = 1) -> list[tuple[int, list[str]]]:
    """(line number, [key, rest]) of the non-blank lines of a Kaldi file, its keys checked unique."""
    lines, seen = [], set()
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().split(maxsplit=1)
        if len(fields) < min_fields:
            raise CorpusError(f"{path}:{number}: expected '<id> <value>', got {line.strip()!r}")
        if fields[0] in seen:
            raise CorpusError(f"{path}:{number}: id {fields[0]} comes twice")
        seen.add(fields[0])
        lines.append((number, fields))
    return lines


def _audio_of(value: str, base: Path) -> tuple[str, bool]:
    """(path or command, is_command) of a wav.scp value or a CSV audio_path."""
    value = value.strip()
    if value.endswith("|"):
        return value[:-1].strip(), True
    return (str((base / Path(value).expanduser()).resolve()) if value else ""), False


def read_kaldi_dir(path: str | Path) -> list[Entry]:
    """The utterances of a Kaldi data directory (wav.scp, text, optional segments and utt2spk).
    A malformed line (a segment without four fields, an id twice) is a CorpusError naming it."""
    path = Path(path)
    if not (path / "wav.scp").is_file():
        raise CorpusError(f"{path} is not a Kaldi data directory: it has no wav.scp")
    cwd = Path.cwd()
    recordings = {f[0]: _audio_of(f[1] if len(f) > 1 else "", cwd) for _, f in _kaldi_lines(path / "wav.scp")}
    texts = {f[0]: f[1] if len(f) > 1 else "" for _, f in _kaldi_lines(path / "text")} \
        if (path / "text").is_file() else {}
    speakers = {f[0]: f[1].strip() for _, f in _kaldi_lines(path / "utt2spk", min_fields=2)} \
        if (path / "utt2spk").is_file() else {}
    segments = []  # (utterance id, recording id, start, end)
    if (path / "segments").is_file():
        for number, fields in _kaldi_lines(path / "segments"):
            parts = " ".join(fields).split()
            try:
                if len(parts) != 4:
                    raise ValueError
                start, end = float(parts[2]), float(parts[3])
            except ValueError:
                raise CorpusError(f"{path / 'segments'}:{number}: expected '<utterance-id> <recording-id> <start> "
                                  f"<end>', got {' '.join(parts)!r}") from None
            segments.append((parts[0], parts[1], start, None if end == -1 else end))
    else:
        segments = [(rid, rid, 0.0, None) for rid in recordings]
    entries = []
    for uid, rid, start, end in segments:
        audio, is_command = recordings.get(rid, (None, False))
        entries.append(Entry(uid, rid, audio, is_command, texts.get(uid), speakers.get(uid), start, end))
    unused = len(set(texts) - {e.id for e in entries})
    if unused:
        log.warning("%s: %d lines of text name no utterance of %s (left out)", path / "text", unused,
                    "segments" if (path / "segments").is_file() else "wav.scp")
    return entries


def _is_tsv(path: Path) -> bool:
    if path.suffix.lower() == ".tsv":
        return True
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return "\t" in f.readline()


def read_table(path: str | Path) -> list[Entry]:
    """The utterances of a CSV or TSV file with the header `audio_path,text[,speaker]` (TSV: no
    quoting, a text may hold quote marks). A header without these columns, or a row with more
    fields than the header (an unquoted comma in a CSV text), is a CorpusError naming it."""
    path = Path(path)
    tsv = _is_tsv(path)
    content = io.StringIO(_read_text(path), newline="")
    reader = csv.reader(content, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(content)
    rows = [(reader.line_num, row) for row in reader]  # the line a row ends on (quoted texts span lines)
    if not rows:
        raise CorpusError(f"{path} is empty: it needs the header audio_path,text[,speaker]")
    header = [c.strip().lower() for c in rows[0][1]]
    if not {"audio_path", "text"} <= set(header) or not set(header) <= set(TABLE_COLUMNS) \
            or len(set(header)) != len(header):
        raise CorpusError(f"{path}: the header is {','.join(rows[0][1])!r}, not audio_path,text[,speaker] "
                          f"(in any order)")
    base = path.parent.resolve()
    found = []  # (line, name, values)
    for number, row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            raise CorpusError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}"
                              + ("" if tsv else " (quote a text that holds commas: \"a, b\")"))
        values = dict(zip(header, row))
        found.append((number, Path(values.get("audio_path", "").strip()).stem or f"line{number}", values))
    count = Counter(name for _, name, _ in found)
    taken = set(count)  # an id made for a repeated name is never another file's name: never two files in one id
    entries, lines = [], defaultdict(list)
    for number, name, values in found:
        uid = name
        if count[name] > 1:
            uid, k = f"{name}-{number}", 1
            while uid in taken:
                k += 1
                uid = f"{name}-{number}.{k}"
            taken.add(uid)
        audio, _ = _audio_of(values.get("audio_path", ""), base)
        lines[audio].append(number)
        entries.append(Entry(uid, uid, audio, False, values.get("text"), (values.get("speaker") or "").strip() or None))
    repeated = {audio: numbers for audio, numbers in lines.items() if audio and len(numbers) > 1}
    if repeated:
        log.warning("%s: %d audio file%s listed more than once, each line kept as an utterance of its own: %s", path,
                    len(repeated), "s" if len(repeated) > 1 else "", "; ".join(
                        f"{audio} (lines {', '.join(map(str, numbers))})" for audio, numbers in list(repeated.items())[:NAMED]))
    return entries


# -- checks --------------------------------------------------------------------------------------


def probe_audio(recording_id: str, audio: str, is_command: bool):
    """The Lhotse Recording of a file (as `read_recording` reads it) or a command's output (its
    header read: sampling rate, channels, samples), or a string saying why there is none."""
    from lhotse import AudioSource, Recording
    from lhotse.audio.backend import info

    if audio is None:
        return f"recording {recording_id} is not in wav.scp"
    if not audio:
        return "no audio path given"
    if not is_command:
        return read_recording(audio, recording_id)
    try:
        proc = subprocess.run(audio, shell=True, capture_output=True)  # as Lhotse runs it
        if proc.returncode != 0 or not proc.stdout:
            why = proc.stderr.decode(errors="replace").strip().splitlines()
            return (f"command failed (exit {proc.returncode}" + (f": {why[-1][:150]}" if why else "") + ")"
                    if proc.returncode else "command wrote no audio")
        i = info(io.BytesIO(proc.stdout))
        recording = Recording(id=recording_id, sources=[AudioSource(type="command", channels=list(range(
            i.channels)), source=audio)], sampling_rate=int(i.samplerate), num_samples=int(i.frames),
            duration=i.frames / i.samplerate)
    except Exception as e:  # noqa: BLE001 - every way a command's output cannot be read is reported, not fatal
        return f"its output: {short_error(e)}"
    if recording.num_samples <= 0:
        return "its output has no samples"
    return recording


def check_split(name: str, source: str | Path, token_type: str, num_jobs: int = 1) -> Split:
    """Read one split's input and check each utterance (see the module's docstring)."""
    from lhotse import SupervisionSegment

    entries, kind = read_input(source)
    split = Split(name, Path(source), kind)
    texts = {}
    for e in entries:
        text, problem, detail = clean_text(e.text, token_type)
        if problem:
            split.dropped[problem].append((e.id, detail))
        else:
            texts[e.id] = text
    wanted = {}
    for e in entries:
        if e.id in texts:
            wanted.setdefault(e.recording_id, (e.audio, e.is_command))
    # reading headers and running commands is I/O: threads. Lhotse logs (root logger) each fallback
    # to another audio backend; the unreadable files are reported here instead.
    with ThreadPoolExecutor(max(1, num_jobs)) as pool, quiet_root_logger():
        probed = dict(zip(wanted, pool.map(lambda kv: probe_audio(kv[0], *kv[1]), wanted.items())))
    used = {}
    for e in entries:
        if e.id not in texts:
            continue
        recording = probed[e.recording_id]
        if isinstance(recording, str):
            split.dropped[UNREADABLE].append((e.id, recording))
            continue
        end = recording.duration if e.end is None else e.end
        if e.start < 0 or end <= e.start or e.start >= recording.duration or end > recording.duration + MAX_OVERSHOOT:
            split.dropped[OUTSIDE].append((e.id, f"{e.start:g}-{end:g} s of {recording.duration:.2f} s"))
            continue
        end = min(end, recording.duration)
        used[recording.id] = recording
        split.supervisions.append(SupervisionSegment(id=e.id, recording_id=recording.id, start=e.start,
                                                     duration=round(end - e.start, 6), channel=0,
                                                     text=texts[e.id], speaker=e.speaker))
    split.recordings = list(used.values())
    return split


def _problem_name(kind: str, token_type: str) -> str:
    return f"characters {token_type} cannot spell" if kind == UNSPELLABLE else kind


def report(split: Split, token_type: str, prefix: str) -> None:
    """Log one line per kind of dropped utterance (count and the first ids) and a summary."""
    for kind, items in split.dropped.items():
        log_dropped(f"{prefix} {split.name}", "utterance", [f"{uid} ({why})" if why else uid for uid, why in items],
                    reason=_problem_name(kind, token_type))
    rates = sorted({r.sampling_rate for r in split.recordings})
    multi = sum(1 for r in split.recordings if r.num_channels > 1)
    seconds = sum(s.duration for s in split.supervisions)
    log.info("%s %s: %d of %d utterances kept, %s (%s %s); audio at %s Hz%s", prefix, split.name,
             len(split.supervisions), split.total, f"{seconds / 3600:.2f} hours" if seconds >= 360 else
             f"{seconds / 60:.1f} minutes", split.kind, split.source, ", ".join(map(str, rates)),
             f", {multi} recording{'s' if multi > 1 else ''} of several channels (the features stage mixes "
             f"them down)" if multi else "")


def _why_nothing(split: Split, token_type: str) -> str:
    """Why no utterance of `split` is left: each kind's count and first utterance."""
    parts = []
    for kind, items in split.dropped.items():
        if items:
            uid, why = items[0]
            parts.append(f"{len(items)} with {_problem_name(kind, token_type)} (e.g. {uid}{': ' + why if why else ''})")
    missing = split.dropped[UNREADABLE]
    hint = ""
    if missing and len(missing) == split.total and all(why.endswith("no such file") for _, why in missing):
        hint = (" - wav.scp's relative paths are read from the current folder" if split.source.is_dir() else
                " - relative audio paths are read from the file's folder")
    return f"none of its {split.total} utterances is usable: {', '.join(parts) or 'it lists none'}{hint}"


def prepare_mydata(inputs: dict[str, str | Path], output_dir: str | Path, prefix: str = "mydata",
            token_type: str = "char-en", num_jobs: int = 1) -> dict[str, Path]:
    """Check every split of `inputs` ({"train": path, "dev": path, ...}), then write
    `output_dir/<prefix>_{recordings,supervisions}_<split>.jsonl.gz` (atomically) for each;
    returns {"recordings_train": path, ...}. A split with no usable utterance is a CorpusError,
    raised before anything is written."""
    from lhotse import RecordingSet, SupervisionSet

    if token_type not in TOKEN_TYPES:
        raise CorpusError(f"--token-type is one of {', '.join(TOKEN_TYPES)}, not {token_type!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", prefix):
        raise CorpusError(f"the prefix {prefix!r} must be a plain name of letters, digits, '_' and '-'")
    splits = []
    for name, source in inputs.items():
        split = check_split(name, source, token_type, num_jobs)
        report(split, token_type, prefix)
        if not split.supervisions:
            raise CorpusError(f"{name} ({source}): {_why_nothing(split, token_type)}")
        splits.append(split)
    written = {}
    for split in splits:
        written.update(write_manifests(output_dir, prefix, split.name, RecordingSet.from_recordings(split.recordings),
                                       SupervisionSet.from_segments(split.supervisions)))
    return written
