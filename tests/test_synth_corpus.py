import hashlib

import soundfile as sf
from lhotse import RecordingSet, SupervisionSet

from ds2.corpora.synth import ACCENTS, SynthOptions, list_variants, plan_utterances, prepare_synth, read_sentences
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
    train_voices = {(u.accent, u.variant) for u in utts if u.split == "train"}
    held_out = {(u.accent, u.variant) for u in utts if u.split != "train"}
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
