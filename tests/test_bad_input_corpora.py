"""Never a silently wrong corpus: bad input to `ds2 prepare` (own data, AISHELL-1, LibriSpeech, the
synthetic corpus) and their downloads either gives manifests that say what the audio says, naming
what was left out in one line, or stops with one line naming the problem and its fix.

Every test runs the real `ds2` command as a subprocess on espeak-ng audio (tests/aishell_fixture.py,
tests/librispeech_fixture.py) or downloads from a local HTTP server (tests/local_http.py).
"""

from __future__ import annotations

import re

import pytest
import soundfile as sf
from aishell_fixture import UTTERANCES, Utterance, make_archives, write_corpus
from librispeech_fixture import write_corpus as write_librispeech
from lhotse import RecordingSet, SupervisionSet
from local_http import serving
from test_bad_input_data import assert_one_line_error, ds2
from test_recipe_mydata import Utt, speak

# AISHELL-1 in small: one utterance of each speaker (two for S0002), and a transcript line without a WAV
AISHELL = [u for u in UTTERANCES if u.id in ("BAC009S0002W0121", "BAC009S0003W0122", "BAC009S0004W0123",
                                             "BAC009S0002W0124", "BAC009S0724W0121", "BAC009S0764W0121",
                                             "BAC009S0004W0901")]


def manifests(folder, prefix, split) -> tuple[RecordingSet, SupervisionSet]:
    return (RecordingSet.from_file(folder / f"{prefix}_recordings_{split}.jsonl.gz").to_eager(),
            SupervisionSet.from_file(folder / f"{prefix}_supervisions_{split}.jsonl.gz").to_eager())


def warnings_of(out, needle: str) -> list[str]:
    return [line for line in out.stderr.splitlines() if needle in line]


# -- own data -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mydata_run(tmp_path_factory):
    """`ds2 prepare mydata` on a CSV listing x.wav twice beside x-3.wav (the id a repeat of x would
    get), and a WAV cut to a third of its bytes (its header says three times as long)."""
    d = tmp_path_factory.mktemp("mydata")
    texts = {"x": "hello world", "x-3": "the cat sat on the mat", "cut": "a dog ran in the park today"}
    for name, text in texts.items():
        audio, sr = speak(Utt(name, "train", "spk1", text))
        sf.write(d / f"{name}.wav", audio, sr, subtype="PCM_16")
    data = (d / "cut.wav").read_bytes()
    (d / "cut.wav").write_bytes(data[:len(data) // 3])
    (d / "train.csv").write_text("audio_path,text\nx.wav,hello world\nx.wav,hello world\n"
                                 "x-3.wav,the cat sat on the mat\ncut.wav,a dog ran in the park today\n")
    (d / "dev.csv").write_text("audio_path,text\nx-3.wav,the cat sat on the mat\n")
    out = ds2("prepare", "mydata", d / "out", "--train", d / "train.csv", "--dev", d / "dev.csv")
    return d, texts, out


def test_own_data_ids_never_merge_two_recordings_and_repeats_are_named(mydata_run):
    d, texts, out = mydata_run
    recordings, supervisions = manifests(d / "out", "mydata", "train")
    ids = [s.id for s in supervisions]
    assert len(ids) == len(set(ids)) == 3, ids
    for sup in supervisions:  # each recording keeps its own transcript
        name = recordings[sup.recording_id].sources[0].source.rsplit("/", 1)[-1][:-len(".wav")]
        assert sup.text == texts[name], (sup.id, name, sup.text)
    assert sorted(s.text for s in supervisions) == ["hello world", "hello world", "the cat sat on the mat"]
    (line,) = warnings_of(out, "listed more than once")
    assert line.endswith(f"train.csv: 1 audio file listed more than once, each line kept as an utterance of its "
                         f"own: {d / 'x.wav'} (lines 2, 3)"), line


def test_own_data_drops_and_names_a_wav_shorter_than_its_header_says(mydata_run):
    d, _, out = mydata_run
    _, supervisions = manifests(d / "out", "mydata", "train")
    assert "cut" not in {s.recording_id for s in supervisions}
    (line,) = warnings_of(out, "dropped")
    assert "mydata train: dropped 1 utterance with missing or unreadable audio: cut (" in line, line
    header, present = map(float, re.search(rf"{d / 'cut.wav'}: truncated \(header (\S+) s, file (\S+) s\)\)$",
                                           line).groups())
    assert present == pytest.approx(header / 3, abs=0.02), line


# -- the synthetic corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["-1", "0"])
def test_synth_refuses_a_training_set_of_no_utterances(tmp_path, count):
    out = ds2("prepare", "synth", tmp_path / "m", "--num-train", count, ok=False)
    assert_one_line_error(out, f"Invalid value for '--num-train': {count} is not in the range x>=1")
    assert out.returncode == 2 and not (tmp_path / "m").exists()


# -- AISHELL-1 -----------------------------------------------------------------------------------


def test_aishell_speaker_left_tarred_is_named_with_the_command_that_untars_it(tmp_path):
    copy = write_corpus(tmp_path / "aishell", AISHELL, tarred=("S0003",))
    out = ds2("prepare", "aishell", tmp_path / "out", "--corpus-dir", copy, ok=False)
    wav = copy / "data_aishell" / "wav"
    assert_one_line_error(out, f"Error: {copy} is a copy of AISHELL-1 with speakers left out: {wav} holds 1 speaker "
                               f"archive not untarred (S0003.tar.gz): untar it there first, `cd {wav} && tar xzf "
                               f"S0003.tar.gz`")
    assert not (tmp_path / "out").exists()


def test_aishell_unreadable_wavs_transcripts_without_wav_and_roman_numerals_are_named(tmp_path):
    numeral = Utterance("BAC009S0004W0500", "train", "S0004", "第 Ⅻ 章")  # NFKC: 第XII章
    copy = write_corpus(tmp_path / "aishell", AISHELL + [numeral])
    junk = copy / "data_aishell/wav/train/S0003/BAC009S0003W0122.wav"
    junk.write_bytes(b"RIFF....this is not a WAV file")
    out = ds2("prepare", "aishell", tmp_path / "out", "--corpus-dir", copy)
    (line,) = warnings_of(out, "unreadable audio file")
    assert line.endswith(f"aishell train ({copy / 'data_aishell/wav/train'}): dropped 1 unreadable audio file: "
                         f"{junk}: Format not recognised."), line
    (line,) = warnings_of(out, "without a WAV")
    assert line.endswith(f"aishell: left out 1 transcript line without a WAV in {copy / 'data_aishell/wav'} "
                         f"(BAC009S0004W0901)"), line
    assert "1 transcripts that cannot be spelled in characters (digits, other scripts), e.g. BAC009S0004W0500 " \
           "'第 Ⅻ 章'" in out.stderr
    _, supervisions = manifests(tmp_path / "out", "aishell", "train")
    assert sorted(s.id for s in supervisions) == ["BAC009S0002W0121", "BAC009S0002W0124", "BAC009S0004W0123"]


def test_aishell_download_names_a_damaged_speaker_archive_inside_a_complete_one(tmp_path):
    www = tmp_path / "www"
    make_archives(www / "33", AISHELL, damaged="S0003")
    with serving(www) as url:
        out = ds2("prepare", "aishell", tmp_path / "data/manifests", "--base-url", url, ok=False)
    archive = tmp_path / "data/download/data_aishell.tgz"
    assert_one_line_error(out, f"Error: {tmp_path / 'data/download/aishell/data_aishell/wav/S0003.tar.gz'} (untarred "
                               f"from {archive}) is not a complete tar.gz archive (")
    assert out.stderr.strip().splitlines()[-1].endswith(
        f"though {archive} is: the copy at {url}/33/data_aishell.tgz is damaged - download it from another mirror "
        f"(--base-url)")


@pytest.mark.parametrize("ignore_ranges", [True, False])
def test_aishell_download_resumes_or_restarts_where_the_mirror_ignores_byte_ranges(tmp_path, ignore_ranges):
    www = tmp_path / "www"
    archives = make_archives(www / "33", AISHELL)
    download = tmp_path / "data/download"
    download.mkdir(parents=True)
    whole = archives["data_aishell.tgz"].read_bytes()
    (download / "data_aishell.tgz").write_bytes(whole[:len(whole) // 2])  # an interrupted download
    with serving(www, ignore_ranges=ignore_ranges) as url:
        out = ds2("prepare", "aishell", tmp_path / "data/manifests", "--base-url", url)
    assert (download / "data_aishell.tgz").read_bytes() == whole  # not the half and then the whole
    assert bool(warnings_of(out, "ignores byte ranges: downloading it again from the start")) == ignore_ranges
    assert len(manifests(tmp_path / "data/manifests", "aishell", "dev")[1]) == 1


# -- LibriSpeech ---------------------------------------------------------------------------------


def test_librispeech_unreadable_flacs_are_dropped_and_named_or_stop_when_nothing_is_left(tmp_path):
    copy = write_librispeech(tmp_path / "copy", ["dev-clean"])
    chapter = copy / "LibriSpeech/dev-clean/1272/128104"
    (chapter / "1272-128104-0001.flac").write_bytes(b"fLaC but nothing else")
    out = ds2("prepare", "librispeech", tmp_path / "out", "--corpus-dir", copy, "--parts", "dev-clean")
    (line,) = warnings_of(out, "unreadable audio file")
    assert f"librispeech dev-clean ({copy / 'LibriSpeech/dev-clean'}): dropped 1 unreadable audio file: " \
           f"{chapter / '1272-128104-0001.flac'}: Error : unknown error in flac decoder" in line, line
    assert sorted(s.id for s in manifests(tmp_path / "out", "librispeech", "dev-clean")[1]) == [
        "1272-128104-0000", "1272-128104-0002"]

    for flac in chapter.glob("*.flac"):
        flac.write_bytes(b"")
    out = ds2("prepare", "librispeech", tmp_path / "out2", "--corpus-dir", copy, "--parts", "dev-clean", ok=False)
    assert_one_line_error(out, f"Error: librispeech dev-clean ({copy / 'LibriSpeech/dev-clean'}): none of its 3 audio "
                               f"files with a usable transcript can be read (e.g. {chapter / '1272-128104-0000.flac'}: ")
    assert not (tmp_path / "out2").exists()
