"""egs/mydata: your own data, a Kaldi data directory or a CSV/TSV file per set, to RESULTS.md.

`spoken_corpus` has espeak-ng read a few dozen sentences by five voices into audio files of
several kinds (16 kHz, 8 kHz, 44.1 kHz stereo WAV, a FLAC) and plants what own data holds: an
audio file that is not audio, an empty transcript, a transcript with digits. It lays them out
twice: as Kaldi data directories (train with `segments`, two of its recordings holding two
utterances each; dev with a `espeak-ng ... |` command in wav.scp) and as CSV/TSV files (relative
and absolute audio paths, a quoted text with a comma). The slow tests run `egs/mydata/run.sh` on
each, side by side: the Kaldi directories with char-en tokens, a test set and the graph methods
(greedy, ctc-graph, hlg); the CSV files with char tokens (no normalisation: the digits are kept), no
test set (dev is the one set decoded) and the LM methods (greedy, beam, nbest-rescore).
The fast tests check `ds2.corpora.mydata` and `ds2 prepare mydata` on small inputs.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import resample_poly

from ds2.cli import main
from ds2.corpora import CorpusError
from ds2.corpora.mydata import EMPTY, UNREADABLE, UNSPELLABLE, check_split, clean_text, prepare_mydata, read_table
from ds2.text import normalize_english

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
           OMP_NUM_THREADS="1")
OVERRIDES = ("train.epochs=1 train.max_duration=30 train.lr=1e-2 train.warmup_steps=5 train.num_workers=0 "
             "train.spec_augment=false train.save_every_steps=0 model.rnn_layers=1 model.rnn_hidden=32 "
             "model.conv_channels=[4]")
KALDI_METHODS = ("greedy", "ctc-graph", "hlg")  # egs/asr.sh's methods: each in one of the two runs
CSV_METHODS = ("greedy", "beam", "nbest-rescore")
VOICES = {"spk1": "en-us+m1", "spk2": "en-gb+f2", "spk3": "en-us+m3", "spk4": "en-gb-scotland+f4",
          "spk5": "en-us+m2"}

TRAIN = [
    "The cat sat on the mat.", "A dog ran in the park.", "The sun is warm today.", "We walk to the shop.",
    "She reads a good book.", "The bird sings in the tree.", "He drinks a cup of tea.", "They play in the park.",
    "The red car is fast.", "I like the warm sun.", "The dog sat on the bed.", "We read a book today.",
    "The cat ran to the tree.", "She likes a cup of milk.", "He walks the dog.", "The shop is open today.",
    "A bird sat on the car.", "They drink warm milk.", "The book is on the bed.", "I walk in the park, today.",
]
DEV = ["The dog is in the park.", "She sat in the warm sun.", "We like the red book.", "The bird ran to the shop."]
TEST = ["He sat on the red bed.", "The cat likes warm milk.", "A dog reads the book.", "They walk to the tree."]


@dataclass(frozen=True)
class Utt:
    id: str
    split: str
    speaker: str
    text: str
    kind: str = "wav16"  # wav16, wav8, stereo44, flac; "junk": a file that is not audio; "pipe": dev's command


def plan() -> list[Utt]:
    utts = []
    kinds = ("wav16", "wav16", "wav8", "stereo44", "wav16", "flac")
    for i, text in enumerate(TRAIN):
        spk = ("spk1", "spk2", "spk3")[i % 3]
        utts.append(Utt(f"{spk}-{i:02d}", "train", spk, text, kinds[i % len(kinds)]))
    utts += [Utt("spk1-bad-audio", "train", "spk1", "The cat is on the bed.", "junk"),
             Utt("spk2-empty", "train", "spk2", ""),
             Utt("spk3-digits", "train", "spk3", "We sat in room 101.")]
    utts += [Utt(f"spk4-{i:02d}", "dev", "spk4", t, "pipe" if i == 1 else ("wav8", "stereo44")[i % 2] if i > 1
                 else "wav16") for i, t in enumerate(DEV)]
    utts += [Utt(f"spk5-{i:02d}", "test", "spk5", t, ("wav16", "stereo44")[i % 2]) for i, t in enumerate(TEST)]
    return utts


UTTS = plan()
PLANTED = {"spk1-bad-audio": UNREADABLE, "spk2-empty": EMPTY, "spk3-digits": UNSPELLABLE}


def espeak_command(utt: Utt) -> str:
    text = utt.text or "The bird is in the tree."  # the empty transcript's audio still says something
    return f"espeak-ng -v {VOICES[utt.speaker]} -s 170 --stdout '{text}'"


def speak(utt: Utt) -> tuple[np.ndarray, int]:
    """espeak-ng's audio of `utt` (22.05 kHz mono float32)."""
    out = subprocess.run(espeak_command(utt), shell=True, capture_output=True, check=True).stdout
    audio, sr = sf.read(io.BytesIO(out), dtype="float32")
    return audio, sr


def write_audio(utt: Utt, folder: Path) -> Path:
    """The audio file of `utt` in its kind's rate, channels and format."""
    if utt.kind == "junk":
        path = folder / f"{utt.id}.wav"
        path.write_text("this file is not audio\n")
        return path
    audio, sr = speak(utt)
    rate = {"wav16": 16000, "wav8": 8000, "stereo44": 44100, "flac": 16000}[utt.kind]
    g = np.gcd(sr, rate)
    audio = np.clip(resample_poly(audio, rate // g, sr // g), -1, 1)
    if utt.kind == "stereo44":
        audio = np.stack([audio, 0.6 * audio], axis=1)
    path = folder / f"{utt.id}.{'flac' if utt.kind == 'flac' else 'wav'}"
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


def write_kaldi(root: Path, audio: dict[str, Path]) -> dict[str, Path]:
    """Kaldi data directories of train (with segments: two recordings of two utterances each, the
    others end -1), dev (wav.scp with an espeak-ng command) and test."""
    dirs = {}
    for split in ("train", "dev", "test"):
        d = root / split
        d.mkdir(parents=True)
        utts = [u for u in UTTS if u.split == split]
        wav, segments = [], []
        if split == "train":
            pairs = [("spk1-00", "spk1-06"), ("spk2-01", "spk2-04")]  # both 16 kHz WAVs of one speaker
            paired = {u for p in pairs for u in p}
            for a, b in pairs:
                xa, sr = sf.read(audio[a], dtype="float32")
                xb, _ = sf.read(audio[b], dtype="float32")
                rec = f"{a}+{b[-2:]}"
                sf.write(d.parent / f"{rec}.wav", np.concatenate([xa, np.zeros(int(0.4 * sr), np.float32), xb]), sr)
                wav.append(f"{rec} {d.parent / f'{rec}.wav'}")
                segments += [f"{a} {rec} 0.00 {len(xa) / sr:.3f}", f"{b} {rec} {(len(xa) + 0.4 * sr) / sr:.3f} -1"]
            for u in utts:
                if u.id not in paired:
                    wav.append(f"{u.id} {audio[u.id]}")
                    segments.append(f"{u.id} {u.id} 0 -1")
            (d / "segments").write_text("\n".join(sorted(segments)) + "\n")
        else:
            wav = [f"{u.id} {espeak_command(u)} |" if u.kind == "pipe" else f"{u.id} {audio[u.id]}" for u in utts]
        (d / "wav.scp").write_text("\n".join(sorted(wav)) + "\n")
        (d / "text").write_text("".join(f"{u.id} {u.text}\n" for u in sorted(utts, key=lambda u: u.id)))
        (d / "utt2spk").write_text("".join(f"{u.id} {u.speaker}\n" for u in sorted(utts, key=lambda u: u.id)))
        dirs[split] = d
    return dirs


def write_tables(root: Path, audio: dict[str, Path]) -> dict[str, Path]:
    """train.csv (speaker column, paths relative to it but one absolute), dev.tsv (no speaker)."""
    root.mkdir(parents=True)
    files = {"train": root / "train.csv", "dev": root / "dev.tsv"}
    with open(files["train"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["audio_path", "text", "speaker"])
        for i, u in enumerate(u for u in UTTS if u.split == "train"):
            path = audio[u.id] if i == 0 else os.path.relpath(audio[u.id], root)
            w.writerow([path, u.text, u.speaker])
    files["dev"].write_text("audio_path\ttext\n" + "".join(
        f"{os.path.relpath(audio[u.id], root)}\t{u.text}\n" for u in UTTS if u.split == "dev" and u.kind != "pipe"))
    return files


@pytest.fixture(scope="module")
def spoken_corpus(tmp_path_factory) -> tuple[dict[str, Path], dict[str, Path]]:
    """(Kaldi data directories, CSV/TSV files) by split, over one set of espeak-ng audio files."""
    root = tmp_path_factory.mktemp("mydata")
    (root / "audio").mkdir()
    audio = {u.id: write_audio(u, root / "audio") for u in UTTS if u.kind != "pipe"}
    return write_kaldi(root / "kaldi", audio), write_tables(root / "tables", audio)


# -- fast: the checks of ds2.corpora.mydata ------------------------------------------------------


@pytest.mark.parametrize("token_type, text, expected", [
    ("char-en", "  The cat,  sat on the \u2018mat\u2019. ", ("the cat sat on the mat", None, "")),
    ("char-en", "We sat in room 101.", (None, UNSPELLABLE, "0 1")),
    ("char-en", "a na\u00efve caf\u00e9", (None, UNSPELLABLE, "\u00e9 \u00ef")),
    ("char-en", " \t ", (None, EMPTY, "")),
    ("char-en", None, (None, EMPTY, "")),
    ("char-en", "?! ...", (None, EMPTY, "")),  # nothing to spell
    ("char", "  We sat in\troom 101,  na\u0131ve! ", ("We sat in room 101, na\u0131ve!", None, "")),
    ("bpe", "cafe\u0301 \u00fcber", ("caf\u00e9 \u00fcber", None, "")),  # NFC: one character for the accent
    ("bpe", "", (None, EMPTY, "")),
    ("char-zh", "我 用 ＡＴＭ 机 取 钱 ，", ("我用ATM机取钱", None, "")),
    ("char-zh", "他 买 了 3 斤 苹果", (None, UNSPELLABLE, "3")),
])
def test_transcripts_are_normalised_or_refused_as_the_token_type_reads_them(token_type, text, expected):
    assert clean_text(text, token_type) == expected


@pytest.fixture(scope="module")
def one_voice(tmp_path_factory) -> tuple[np.ndarray, int]:
    audio, sr = speak(Utt("x", "train", "spk1", "The cat sat on the mat."))
    return audio, sr


def test_a_kaldi_dir_names_each_unusable_utterance_and_keeps_the_others(one_voice, tmp_path, monkeypatch):
    audio, sr = one_voice
    monkeypatch.chdir(tmp_path)  # wav.scp's relative paths and commands are read from here
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "rate8k.wav", resample_poly(audio, 8000, sr), 8000)
    sf.write(tmp_path / "a" / "long.flac", np.concatenate([audio, audio]), sr)
    (tmp_path / "a" / "junk.wav").write_bytes(b"RIFF....not a wave file")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(
        "rec-8k a/rate8k.wav\n"                                       # relative: from the current folder
        "rec-long a/long.flac\n"
        "rec-pipe cat a/rate8k.wav |\n"
        "rec-junk a/junk.wav\n"
        "rec-gone a/gone.wav\n"
        "rec-fail false |\n")
    dur = len(audio) / sr
    (d / "segments").write_text(
        f"u-8k rec-8k 0 -1\nu-first rec-long 0 {dur:.3f}\nu-second rec-long {dur:.3f} -1\n"
        f"u-pipe rec-pipe 0.1 0.9\nu-junk rec-junk 0 -1\nu-gone rec-gone 0 -1\nu-fail rec-fail 0 -1\n"
        f"u-norec rec-unlisted 0 1\nu-outside rec-8k {dur + 1:.3f} {dur + 2:.3f}\n"
        f"u-notext rec-8k 0 1\nu-digits rec-8k 0 1\n")
    (d / "text").write_text("u-8k Hello there.\nu-first first half\nu-second SECOND half\nu-pipe a pipe\n"
                            "u-junk junk\nu-gone gone\nu-fail fail\nu-norec no recording\nu-outside outside\n"
                            "u-digits 42 apples\nu-orphan a transcript of nothing\n")
    (d / "utt2spk").write_text("u-8k s1\nu-first s2\nu-second s2\n")
    split = check_split("train", d, "char-en")
    dropped = {kind: [uid for uid, _ in items] for kind, items in split.dropped.items()}
    assert dropped == {EMPTY: ["u-notext"], UNSPELLABLE: ["u-digits"],
                       UNREADABLE: ["u-junk", "u-gone", "u-fail", "u-norec"],
                       "segment outside its recording": ["u-outside"]}
    why = dict(split.dropped[UNREADABLE])
    assert why["u-gone"] == f"{tmp_path / 'a' / 'gone.wav'}: no such file"
    assert why["u-fail"].startswith("command failed (exit 1")
    assert why["u-norec"] == "recording rec-unlisted is not in wav.scp"
    assert "Format not recognised" in why["u-junk"]
    sups = {s.id: s for s in split.supervisions}
    assert {i: s.text for i, s in sups.items()} == {"u-8k": "hello there", "u-first": "first half",
                                                    "u-second": "second half", "u-pipe": "a pipe"}
    assert sups["u-8k"].speaker == "s1" and sups["u-pipe"].speaker is None
    recs = {r.id: r for r in split.recordings}
    assert sorted(recs) == ["rec-8k", "rec-long", "rec-pipe"]
    assert recs["rec-8k"].sampling_rate == 8000 and recs["rec-pipe"].sources[0].type == "command"
    assert recs["rec-long"].duration == pytest.approx(2 * dur, abs=1e-3)
    # -1 ends the segment with its recording; the pipe's audio is read through the command
    assert sups["u-second"].end == pytest.approx(2 * dur, abs=1e-3)
    assert recs["rec-pipe"].load_audio(offset=0.1, duration=0.8).shape == (1, 6400)


def test_a_table_reads_quoted_texts_relative_paths_and_names_repeated_files(one_voice, tmp_path):
    audio, sr = one_voice
    (tmp_path / "clips" / "b").mkdir(parents=True)
    for name in ("clips/one.wav", "clips/b/one.wav", "clips/two.wav"):
        sf.write(tmp_path / name, audio, sr)
    table = tmp_path / "sets" / "train.csv"
    table.parent.mkdir()
    table.write_text('text,audio_path\n"Yes, she said",../clips/one.wav\n\nno,../clips/b/one.wav\n'
                     f'"two\nlines",{tmp_path / "clips/two.wav"}\n')
    entries = read_table(table)
    assert [(e.id, e.text, e.audio, e.speaker) for e in entries] == [
        ("one-2", "Yes, she said", str(tmp_path / "clips/one.wav"), None),
        ("one-4", "no", str(tmp_path / "clips/b/one.wav"), None),
        ("two", "two\nlines", str(tmp_path / "clips/two.wav"), None)]
    tsv = tmp_path / "sets" / "dev.txt"  # a tab in the header makes it a TSV, whatever its name
    tsv.write_text('audio_path\ttext\tspeaker\n../clips/two.wav\tshe said "hi"\tann\n')
    (entry,) = read_table(tsv)
    assert (entry.text, entry.speaker) == ('she said "hi"', "ann")


@pytest.mark.parametrize("content, message", [
    ("path,text\na.wav,hi\n", "the header is 'path,text', not audio_path,text[,speaker] (in any order)"),
    ("audio_path,text\na.wav,hello, world\n", ":2: 3 fields, the header has 2 (quote a text that holds commas"),
    ("", "is empty: it needs the header audio_path,text[,speaker]"),
    (b"audio_path,text\na.wav,caf\xe9\n", "is not UTF-8 text (byte 25): convert it, e.g. with iconv -t utf-8"),
])
def test_a_malformed_table_is_one_line_naming_it(tmp_path, content, message):
    (tmp_path / "t.csv").write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CorpusError) as e:
        read_table(tmp_path / "t.csv")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_prepare_writes_nothing_when_a_split_has_nothing_usable(one_voice, tmp_path, monkeypatch):
    audio, sr = one_voice
    sf.write(tmp_path / "ok.wav", audio, sr)
    (tmp_path / "train.csv").write_text("audio_path,text\nok.wav,the cat sat on the mat\n")
    (tmp_path / "dev.csv").write_text("audio_path,text\nmissing.wav,the cat\nok.wav,\n")
    with monkeypatch.context() as m:
        m.chdir(tmp_path)
        out = CliRunner().invoke(main, ["prepare", "mydata", "out", "--train", "train.csv", "--dev", "dev.csv"])
    assert out.exit_code == 1
    assert out.stderr.strip().splitlines() == [(
        "Error: dev (dev.csv): none of its 2 utterances is usable: 1 with empty transcript (e.g. ok), 1 with "
        f"missing or unreadable audio (e.g. missing: {tmp_path / 'missing.wav'}: no such file)")]
    assert not (tmp_path / "out").exists()
    written = prepare_mydata({"train": tmp_path / "train.csv"}, tmp_path / "out2", prefix="own")
    assert sorted(p.name for p in written.values()) == ["own_recordings_train.jsonl.gz",
                                                         "own_supervisions_train.jsonl.gz"]


def test_a_split_whose_audio_is_all_missing_says_where_relative_paths_are_read_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("u1 wavs/u1.wav\nu2 wavs/u2.wav\n")
    (d / "text").write_text("u1 hello\nu2 world\n")
    with pytest.raises(CorpusError) as e:
        prepare_mydata({"train": d}, tmp_path / "out")
    assert str(e.value) == (f"train ({d}): none of its 2 utterances is usable: 2 with missing or unreadable audio "
                            f"(e.g. u1: {tmp_path / 'wavs/u1.wav'}: no such file) - wav.scp's relative paths are "
                            "read from the current folder")


def test_the_two_runs_decode_with_every_method_of_the_shared_stages():
    default = re.search(r'^: "\$\{methods:=([^}]*)\}"', (REPO / "egs" / "asr.sh").read_text(), re.M).group(1)
    assert set(KALDI_METHODS) | set(CSV_METHODS) == set(default.split())


def _run_sh(recipe: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run.sh", *map(str, args)], cwd=recipe, env=ENV, capture_output=True, text=True,
                          timeout=60)


def test_run_sh_decodes_a_test_set_only_when_given_and_needs_train_and_dev(tmp_path):
    recipe = _recipe_copy(tmp_path)
    for args, decoded in ((["--test", "t.csv"], "dev test"), (["--test=t.csv"], "dev test"), ([], "dev "),
                          (["--test", ""], "dev "), (["--dev", "--test"], "dev ")):
        # stage 8 with no method names the sets it would decode, and does nothing
        out = _run_sh(recipe, *args, "--stage", "8", "--stop-stage", "8", "--methods", "")
        assert out.returncode == 0 and f"Stage 8: decode {decoded} with: \n" in out.stderr, (args, out.stderr)
    out = _run_sh(recipe, "--dev", "dev.csv")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "run.sh: give your data: --train DIR|FILE --dev DIR|FILE [--test DIR|FILE] " \
                                          "(see run.sh --help)"
    assert not (recipe / "data" / "manifests").exists()


def test_run_sh_refuses_to_reuse_data_prepared_from_other_inputs(tmp_path):
    recipe = _recipe_copy(tmp_path)
    (recipe / "data" / ".done").mkdir(parents=True)
    marker = recipe / "data" / ".done" / "stage1.prepare"
    marker.write_text("ds2 prepare mydata data/manifests --train a.csv --dev b.csv --prefix mydata --token-type "
                      "char-en --num-jobs 2 \n")
    out = _run_sh(recipe, "--train", "a.csv", "--dev", "b.csv", "--token-type", "bpe", "--stop-stage", "1")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1].startswith("run.sh: data/ was prepared from other inputs (ds2 prepare mydata ")
    assert out.stderr.splitlines()[-1].endswith("--num-jobs 2 ): rm -rf data exp to start again")
    # the same inputs with other --num-jobs: stage 1 is done
    out = _run_sh(recipe, "--train", "a.csv", "--dev", "b.csv", "--num-jobs", "1", "--stop-stage", "1")
    assert out.returncode == 0 and "skipping: data/.done/stage1.prepare exists" in out.stderr, out.stderr


# -- slow: the recipe on a Kaldi data directory and on CSV/TSV files --------------------------------


def _recipe_copy(root: Path) -> Path:
    (root / "egs").mkdir(parents=True)
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    shutil.copytree(REPO / "egs" / "mydata", root / "egs" / "mydata",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    (root / "utils").symlink_to(REPO / "utils")
    return root / "egs" / "mydata"


@pytest.fixture(scope="module")
def recipe_runs(spoken_corpus, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """{"kaldi": (recipe folder, log), "csv": ...}: the two runs of run.sh, side by side (one core each)."""
    kaldi, tables = spoken_corpus
    common = ["--num-jobs", "1", "--decode-jobs", "1", "--avg", "1", "--overrides", OVERRIDES + " train.threads=1"]
    # each method once over the two runs, the LM's with the CSV, the graphs' with the Kaldi run; one LM each
    # (a 3-gram also rescores): every process start counts at this size
    args = {"kaldi": ["--train", kaldi["train"], "--dev", kaldi["dev"], "--test", kaldi["test"],
                      "--methods", " ".join(KALDI_METHODS), "--rescore-lm-order", "3"],
            "csv": ["--train", tables["train"], "--dev", tables["dev"], "--token-type", "char",
                    "--methods", " ".join(CSV_METHODS), "--rescore-lm-order", "3"]}
    procs = {}
    for name, extra in args.items():
        recipe = _recipe_copy(tmp_path_factory.mktemp(name))
        procs[name] = (recipe, subprocess.Popen(["bash", "run.sh", *map(str, extra), *common], cwd=recipe, env=ENV,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    runs = {}
    for name, (recipe, proc) in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"run.sh on the {name} input failed ({proc.returncode}):\n{out[-4000:]}")
        runs[name] = recipe, out
    return runs


def _manifests(recipe: Path, split: str):
    from lhotse import RecordingSet, SupervisionSet

    folder = recipe / "data" / "manifests"
    return (RecordingSet.from_file(folder / f"mydata_recordings_{split}.jsonl.gz").to_eager(),
            SupervisionSet.from_file(folder / f"mydata_supervisions_{split}.jsonl.gz").to_eager())


def _results_rows(recipe: Path, sets: tuple[str, ...], methods: tuple[str, ...]) -> None:
    """RESULTS.md has a %WER and %CER column per set and a row of numbers per method, no other row."""
    lines = (recipe / "RESULTS.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| experiment | method |"))
    assert header == "| experiment | method | " + " | ".join(f"{s} %WER | {s} %CER" for s in sets) + " |"
    start = lines.index(header) + 2
    rows = lines[start:lines.index("", start)]
    assert sorted(r.split("|")[2].strip() for r in rows) == sorted(methods)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][2:]
        assert len(cells) == 2 * len(sets) and all(re.fullmatch(r"\d+\.\d\d", c) for c in cells), row


@pytest.mark.slow
def test_kaldi_dirs_drop_and_name_the_planted_utterances_and_keep_the_rest(recipe_runs):
    recipe, out = recipe_runs["kaldi"]
    assert "mydata train: dropped 1 utterance with missing or unreadable audio: spk1-bad-audio (" in out
    assert "mydata train: dropped 1 utterance with empty transcript: spk2-empty\n" in out
    assert "mydata train: dropped 1 utterance with characters char-en cannot spell: spk3-digits (0 1)\n" in out
    for split in ("train", "dev", "test"):
        recordings, supervisions = _manifests(recipe, split)
        expected = {u.id: normalize_english(u.text) for u in UTTS if u.split == split and u.id not in PLANTED}
        assert {s.id: s.text for s in supervisions} == expected
        assert all(s.speaker == s.id.split("-")[0] for s in supervisions)
        kinds = {u.kind for u in UTTS if u.id in expected}
        rates = {r.sampling_rate for r in recordings}
        assert rates == {{"wav16": 16000, "flac": 16000, "wav8": 8000, "stereo44": 44100, "pipe": 22050}[k]
                         for k in kinds}
        assert {r.id for r in recordings if r.num_channels == 2} == {u.id for u in UTTS if u.id in expected
                                                                     and u.kind == "stereo44"}
    # two utterances of one recording (segments), the second one to its end (-1)
    recordings, supervisions = _manifests(recipe, "train")
    first, second = supervisions["spk1-00"], supervisions["spk1-06"]
    assert first.recording_id == second.recording_id == "spk1-00+06" and first.start == 0
    assert second.start > first.end and second.end == pytest.approx(recordings["spk1-00+06"].duration)
    assert _manifests(recipe, "dev")[0]["spk4-01"].sources[0].type == "command"


def _cut_texts(recipe: Path, split: str) -> list[str]:
    from lhotse import CutSet

    cuts = CutSet.from_file(recipe / "data" / "fbank" / f"mydata_cuts_{split}.jsonl.gz")
    return sorted(" ".join(s.text for s in c.supervisions) for c in cuts)


@pytest.mark.slow
def test_every_kept_utterance_has_features_whatever_its_rate_and_channels(recipe_runs):
    """The features stage reads 8 kHz, 16 kHz and 44.1 kHz stereo WAVs, a FLAC and a command's 22.05 kHz
    output: one cut per utterance (train of the Kaldi run has segments: see the next test)."""
    for name, (recipe, _) in recipe_runs.items():
        for split in ("train", "dev", "test") if name == "kaldi" else ("train", "dev"):
            if (name, split) != ("kaldi", "train"):
                assert _cut_texts(recipe, split) == sorted(s.text for s in _manifests(recipe, split)[1]), (name, split)


@pytest.mark.slow
def test_each_segment_of_a_recording_is_a_cut_of_its_own(recipe_runs):
    recipe, _ = recipe_runs["kaldi"]
    assert _cut_texts(recipe, "train") == sorted(s.text for s in _manifests(recipe, "train")[1])


@pytest.mark.slow
def test_kaldi_run_results_have_a_row_per_set_and_method(recipe_runs):
    recipe, _ = recipe_runs["kaldi"]
    _results_rows(recipe, ("dev", "test"), KALDI_METHODS)


@pytest.mark.slow
def test_csv_run_with_char_tokens_keeps_the_text_as_written_and_decodes_dev_only(recipe_runs):
    recipe, out = recipe_runs["csv"]
    assert "mydata train: dropped 1 utterance with missing or unreadable audio: spk1-bad-audio (" in out
    assert "mydata train: dropped 1 utterance with empty transcript: spk2-empty\n" in out
    assert "cannot spell" not in out  # char tokens spell everything: the digits are kept
    for split in ("train", "dev"):
        _, supervisions = _manifests(recipe, split)
        expected = {u.id: u.text for u in UTTS if u.split == split and (u.id not in PLANTED or u.id == "spk3-digits")}
        if split == "dev":
            del expected["spk4-01"]  # the command of the Kaldi dir: no file for the TSV
        assert {s.id: s.text for s in supervisions} == expected
        assert all(s.speaker == (s.id.split("-")[0] if split == "train" else None) for s in supervisions)
    assert not (recipe / "data" / "manifests" / "mydata_supervisions_test.jsonl.gz").exists()
    _results_rows(recipe, ("dev",), CSV_METHODS)
    tokens = (recipe / "data" / "lang_char" / "tokens.txt").read_text().split()
    assert {"1", "0", ",", "T"} <= set(tokens)
