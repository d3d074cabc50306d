import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet

from ds2.corpora.peoples_daily import pieces as peoples_daily_pieces
from ds2.corpora.synth import (ACCENTS, LANGUAGES, SynthOptions, list_variants, plan_utterances, prepare_synth,
                               read_sentences)
from ds2.text import is_hanzi, normalize_mandarin
from tests.conftest import TINY


def _sups(root, split):
    return SupervisionSet.from_file(root / "manifests" / f"synth_supervisions_{split}.jsonl.gz")


def test_sentences_are_normalised_and_unique():
    sentences = read_sentences()
    assert len(sentences) > 5000
    assert len(set(sentences)) == len(sentences)
    allowed = set(" 'abcdefghijklmnopqrstuvwxyz")
    for s in sentences:
        assert set(s) <= allowed and 4 <= len(s.split()) <= 20 and s == s.strip()


def test_splits_are_disjoint_in_sentences_and_voices(tiny_corpus):
    texts = {split: {s.text for s in _sups(tiny_corpus, split)} for split in ("train", "dev", "test")}
    voices = {split: {s.speaker for s in _sups(tiny_corpus, split)} for split in ("train", "dev", "test")}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not texts[a] & texts[b], f"{a} and {b} share sentences"
        assert not voices[a] & voices[b], f"{a} and {b} share voices"
    assert len(_sups(tiny_corpus, "train")) == TINY.num_train
    assert len(_sups(tiny_corpus, "test")) == TINY.num_test


def test_held_out_voices_are_never_planned_for_training():
    opts = SynthOptions(num_train=3000, num_dev=200, num_test=300)
    utts = plan_utterances(read_sentences(), list_variants(), opts)
    train_voices = {tuple(u.voice.split("+")) for u in utts if u.split == "train"}
    held_out = {tuple(u.voice.split("+")) for u in utts if u.split != "train"}
    assert not train_voices & held_out
    assert len({a for a, _ in train_voices}) == len(ACCENTS)  # every accent is trained on
    assert len(train_voices) > 300


def test_lm_text_holds_no_dev_or_test_sentence(tiny_corpus):
    lm = set((tiny_corpus / "manifests" / "synth_lm_text.txt").read_text().splitlines())
    assert {s.text for s in _sups(tiny_corpus, "train")} <= lm
    for split in ("dev", "test"):
        assert not {s.text for s in _sups(tiny_corpus, split)} & lm


def test_audio_is_16k_and_matches_the_manifest(tiny_corpus):
    recs = RecordingSet.from_file(tiny_corpus / "manifests" / "synth_recordings_dev.jsonl.gz")
    for rec in recs:
        info = sf.info(rec.sources[0].source)
        assert info.samplerate == 16000 and info.channels == 1
        assert info.frames == rec.num_samples
        assert 0.5 < rec.duration < 15


def test_deterministic_for_a_seed(tiny_corpus, tmp_path):
    prepare_synth(tmp_path / "m", tmp_path / "a", TINY, num_jobs=1)
    for split in ("train", "test"):
        again = list(SupervisionSet.from_file(tmp_path / "m" / f"synth_supervisions_{split}.jsonl.gz"))
        first = list(_sups(tiny_corpus, split))
        assert [(s.text, s.speaker, s.custom) for s in again] == [(s.text, s.speaker, s.custom) for s in first]

    def digest(p):
        return hashlib.md5(p.read_bytes()).hexdigest()

    for name in ("synth-test-000000.wav", "synth-train-000007.wav"):
        assert digest(tmp_path / "a" / name) == digest(tiny_corpus / "audio" / name)


def test_english_plan_is_pinned():
    # The language-generic module must plan the English corpus exactly as the English-only one did
    # (texts, voices, speeds, pitches, noise and seeds of every utterance; md5 taken before the change).
    utts = plan_utterances(read_sentences(), list_variants(), SynthOptions(num_train=3000, num_dev=200, num_test=300))
    lines = "".join(f"{u.id}|{u.text}|{u.voice}|{u.speed}|{u.pitch}|{u.snr_db}|{u.seed}\n" for u in utts)
    assert hashlib.md5(lines.encode()).hexdigest() == "79c047b459d00839379b9903d7550fb1"


# -- Mandarin (language="zh", egs/synth_zh) ------------------------------------------------------

TINY_ZH = SynthOptions(num_train=30, num_dev=6, num_test=6, num_dev_voices=3, num_test_voices=3, seed=3,
                       language="zh")


@pytest.fixture(scope="module")
def tiny_zh(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_zh")
    written = prepare_synth(root / "manifests", root / "audio", TINY_ZH, num_jobs=2)
    assert set(written) == {f"{k}_{s}" for k in ("recordings", "supervisions") for s in ("train", "dev", "test")} | {"lm_text"}
    return root


def _zh_sups(root, split):
    return SupervisionSet.from_file(root / "manifests" / f"synthzh_supervisions_{split}.jsonl.gz")


def test_mandarin_sentences_are_pure_hanzi_and_unique():
    sentences = read_sentences(language="zh")
    assert len(sentences) > 10000
    assert len(set(sentences)) == len(sentences)
    for s in sentences:
        assert all(is_hanzi(c) for c in s) and 4 <= len(s) <= 25, s
    assert len(set("".join(sentences))) > 4000


def test_mandarin_lines_of_a_fortune_are_joined_and_split_at_sentence_ends():
    fortune = ("要有礼貌\n\n请接受这一事\n实并保持礼貌。你好吗？\n我很好\n\n"
               "\x1b[33m    -- Debian \x1b[32m《行为准则》\x1b[m第一条\x1b[m")
    pieces = [normalize_mandarin(p) for p in LANGUAGES["zh"].texts["fortunes"].pieces(fortune)]
    assert [p for p in pieces if p] == ["要有礼貌", "请接受这一事实并保持礼貌", "你好吗", "我很好"]


def test_mandarin_corpus(tiny_zh):
    sups = {split: list(_zh_sups(tiny_zh, split)) for split in ("train", "dev", "test")}
    assert [len(sups[s]) for s in ("train", "dev", "test")] == [30, 6, 6]
    for split, items in sups.items():
        for s in items:
            assert s.language == "Chinese" and s.id.startswith(f"synthzh-{split}-")
            assert s.text and all(is_hanzi(c) for c in s.text), s.text  # no spaces, no Latin, no punctuation
            assert s.speaker.startswith("cmn-latn-pinyin+")
    texts = {split: {s.text for s in items} for split, items in sups.items()}
    voices = {split: {s.speaker for s in items} for split, items in sups.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not texts[a] & texts[b], f"{a} and {b} share sentences"
        assert not voices[a] & voices[b], f"{a} and {b} share voices"
    # the People's Daily LM lines keep the corpus's word boundaries (the word LM's text): as sentences, no space
    lines = (tiny_zh / "manifests" / "synthzh_lm_text.txt").read_text(encoding="utf-8").splitlines()
    lm = {line.replace(" ", "") for line in lines}
    assert texts["train"] <= lm
    assert not (texts["dev"] | texts["test"]) & lm
    assert all(all(is_hanzi(c) for c in line) for line in lm)
    assert sum(" " in line for line in lines) > len(lines) / 2
    # every line is a piece of the corpus as it segments it (words of Hanzi between single spaces), and
    # the LM text is every piece but those spoken in dev or test, in corpus order
    assert all(line.split(" ") == line.split() and all(map(is_hanzi, "".join(line.split()))) for line in lines)
    held_out = texts["dev"] | texts["test"]
    assert lines == [" ".join(p) for p in peoples_daily_pieces()[0] if "".join(p) not in held_out]


def test_mandarin_audio_is_16k_and_matches_the_manifest(tiny_zh):
    for split in ("train", "test"):
        recs = RecordingSet.from_file(tiny_zh / "manifests" / f"synthzh_recordings_{split}.jsonl.gz")
        sups = {s.recording_id: s for s in _zh_sups(tiny_zh, split)}
        for rec in recs:
            info = sf.info(rec.sources[0].source)
            assert info.samplerate == 16000 and info.channels == 1 and info.frames == rec.num_samples
            # espeak-ng's Mandarin voice says about 3-5 characters a second: every character is spoken
            assert 0.12 < rec.duration / len(sups[rec.id].text) < 0.6


def test_mandarin_held_out_voices_are_never_planned_for_training():
    opts = SynthOptions(num_train=3000, num_dev=200, num_test=300, language="zh")
    utts = plan_utterances(read_sentences(language="zh"), list_variants(), opts)
    train_voices = {tuple(u.voice.split("+")) for u in utts if u.split == "train"}
    dev_voices = {tuple(u.voice.split("+")) for u in utts if u.split == "dev"}
    test_voices = {tuple(u.voice.split("+")) for u in utts if u.split == "test"}
    assert not train_voices & (dev_voices | test_voices) and not dev_voices & test_voices
    assert len(dev_voices) == len(test_voices) == 12 and len(train_voices) > 50


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language"):
        SynthOptions(language="fr")


def test_mandarin_fortunes_text_is_still_a_choice(tmp_path):
    """`--text fortunes`: Debian's fortunes-zh (chinese.u8) instead of the People's Daily, through the
    real command: its sentences, and an LM text of whole sentences without spaces."""
    fortunes = read_sentences(language="zh", text="fortunes")
    assert len(fortunes) > 1000 and all(all(is_hanzi(c) for c in s) and 4 <= len(s) <= 25 for s in fortunes)
    assert fortunes[:2] == ["要有礼貌", "请接受这一事实并保持礼貌"]  # chinese.u8, not the People's Daily
    ds2 = str(Path(sys.executable).with_name("ds2"))
    proc = subprocess.run([ds2, "prepare", "synth", str(tmp_path / "manifests"), "--language", "zh",
                           "--text", "fortunes", "--num-train", "6", "--num-dev", "2", "--num-test", "2", "--num-dev-voices", "2",
                           "--num-test-voices", "2", "--seed", "1", "--num-jobs", "1"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LM text: " in proc.stderr and " sentences of fortunes " in proc.stderr
    texts = {split: [s.text for s in _zh_sups(tmp_path, split)] for split in ("train", "dev", "test")}
    assert [len(texts[s]) for s in ("train", "dev", "test")] == [6, 2, 2]
    assert set(texts["train"]) | set(texts["dev"]) | set(texts["test"]) <= set(fortunes)
    held_out = set(texts["dev"]) | set(texts["test"])
    lines = (tmp_path / "manifests" / "synthzh_lm_text.txt").read_text(encoding="utf-8").splitlines()
    # the fortunes' LM lines are sentences as they are spoken: no word boundaries, any length
    lm = LANGUAGES["zh"].texts["fortunes"].lm_lines()
    assert lines == [line for text, line in lm if text not in held_out] and not any(" " in line for line in lines)
    assert set(texts["train"]) <= set(lines) and not held_out & set(lines)
