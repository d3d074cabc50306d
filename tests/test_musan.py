"""`ds2 prepare musan` and the noise features of `ds2 features --recordings-only`, on a miniature
MUSAN (tests/musan_fixture.py) on disk or served as OpenSLR 17's musan.tar.gz from 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from lhotse import CutSet, RecordingSet
from musan_fixture import NOISE_SECONDS, make_archive, write_musan

from ds2.cli import main


def ds2(*args):
    """`ds2 ARGS...` in this process, in the current folder (the test's, by monkeypatch.chdir)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_download_is_prepared_and_its_noise_gets_features(tmp_path, http_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    www, base_url = http_root
    make_archive(www, num_noise=2, num_music=1)
    proc = ds2("prepare", "musan", "data/manifests", "--base-url", base_url)
    assert proc.exit_code == 0, proc.output
    assert (tmp_path / "data" / "download" / "musan" / "README").is_file()  # untarred where the recipes download
    for part, ids in (("noise", ["noise-free-sound-0000", "noise-free-sound-0001"]), ("music", ["music-fma-0000"])):
        recs = RecordingSet.from_file(tmp_path / "data" / "manifests" / f"musan_recordings_{part}.jsonl.gz")
        assert sorted(recs.ids) == ids
        assert all(Path(r.sources[0].source).is_absolute() and r.sampling_rate == 16000 for r in recs)
    assert not (tmp_path / "data" / "manifests" / "musan_recordings_speech.jsonl.gz").exists()  # not asked for

    proc = ds2("features", "data/manifests", "data/fbank", "--prefix", "musan", "--splits", "noise,music",
               "--recordings-only", "--num-jobs", "1")
    assert proc.exit_code == 0, proc.output
    assert not list((tmp_path / "data" / "fbank").glob("*stats*"))  # noise never gives the statistics
    noise = CutSet.from_file(tmp_path / "data" / "fbank" / "musan_cuts_noise.jsonl.gz")
    assert sorted(noise.ids) == ["noise-free-sound-0000-0", "noise-free-sound-0001-1"]
    for cut in noise:  # whole recordings, no supervisions
        assert not cut.supervisions and abs(cut.duration - NOISE_SECONDS) < 1e-6
        feats = cut.load_features()
        assert feats.shape == (cut.num_frames, 80) and np.isfinite(feats).all()


def test_a_copy_on_disk_is_prepared_and_one_without_the_part_fails_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_musan(tmp_path / "corpora", num_noise=2)
    ok = ds2("prepare", "musan", "out", "--corpus-dir", tmp_path / "corpora", "--parts", "noise,speech")
    assert ok.exit_code == 0, ok.output  # the parent of musan/ is fine
    assert len(RecordingSet.from_file(tmp_path / "out" / "musan_recordings_noise.jsonl.gz")) == 2
    assert len(RecordingSet.from_file(tmp_path / "out" / "musan_recordings_speech.jsonl.gz")) == 1
    assert not (tmp_path / "data" / "download").exists()

    for wav in (tmp_path / "corpora" / "musan" / "music").rglob("*.wav"):
        wav.unlink()
    bad = ds2("prepare", "musan", "out2", "--corpus-dir", tmp_path / "corpora" / "musan")
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'corpora' / 'musan'} is not a copy of MUSAN: no WAV under music/"]
    unknown = ds2("prepare", "musan", "out3", "--corpus-dir", tmp_path / "corpora", "--parts", "noise,babble")
    assert unknown.exit_code == 2 and "choose among music, noise, speech" in unknown.stderr
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_a_download_that_gets_404_fails_naming_the_url(tmp_path, http_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, base_url = http_root  # serves an empty folder
    proc = ds2("prepare", "musan", "data/manifests", "--base-url", base_url)
    assert proc.exit_code == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: cannot download {base_url}/17/musan.tar.gz: HTTP 404 File not found"]
    assert not (tmp_path / "data" / "download" / "musan.tar.gz").exists()  # no empty archive left to "resume"


def test_a_download_without_a_server_fails_naming_the_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
        base_url = f"http://127.0.0.1:{s.getsockname()[1]}/resources"
        proc = ds2("prepare", "musan", "data/manifests", "--base-url", base_url)
    assert proc.exit_code == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"Error: cannot download {base_url}/17/musan.tar.gz: ") and "refused" in line
