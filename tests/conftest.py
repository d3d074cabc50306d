"""Shared fixtures: a tiny real corpus (espeak-ng audio, Lhotse manifests, fbank features), and a
tiny Mandarin one."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_http import serving
from memorised import memorise

from ds2.corpora.synth import SynthOptions, prepare_synth
from ds2.data.features import FeatureConfig, compute_features
from ds2.text import CharTokenizer

REPO = Path(__file__).resolve().parents[1]
TINY = SynthOptions(num_train=40, num_dev=8, num_test=8, num_dev_voices=4, num_test_voices=4, seed=3)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """data/ of a tiny synthetic corpus: manifests/ and fbank/ (with train stats)."""
    root = tmp_path_factory.mktemp("tiny")
    prepare_synth(root / "manifests", root / "audio", TINY, num_jobs=2)
    compute_features(root / "manifests", root / "fbank", "synth", ["train", "dev", "test"],
                     FeatureConfig(kind="fbank"), num_jobs=1)
    return root


@pytest.fixture(scope="session")
def lang(tmp_path_factory) -> Path:
    """A lang dir with the English character tokenizer (tokens.txt)."""
    d = tmp_path_factory.mktemp("lang")
    CharTokenizer().save(d)
    return d


@pytest.fixture(scope="session")
def memorised(tmp_path_factory) -> tuple[Path, Path]:
    """(experiment folder, folder of audio files): a forward-only model that spells one sentence
    (tests/memorised.py)."""
    return memorise(tmp_path_factory.mktemp("memorised"))


@pytest.fixture
def http_root(tmp_path):
    """(folder, base URL): an HTTP server on 127.0.0.1 serving `folder`, for the test's duration."""
    root = tmp_path / "www"
    root.mkdir()
    with serving(root) as url:
        yield root, url


@pytest.fixture(scope="session")
def tiny_zh_corpus(tmp_path_factory) -> Path:
    """data/ of a tiny Mandarin corpus laid out as `tiny_corpus` (manifests/ and fbank/ with the
    synth_ names, train stats) and lang/ (char-zh tokens of the training text): espeak-ng's Mandarin
    voices read the AISHELL fixture's sentences (tests/aishell_fixture.py), Hanzi only, without the
    word spaces; 40 training utterances, 8 dev."""
    import re

    import soundfile as sf
    from aishell_fixture import DEV_SENTENCES, SPEAKERS, TRAIN_SENTENCES, Utterance, speak
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    root = tmp_path_factory.mktemp("tiny_zh")
    (root / "audio").mkdir()
    (root / "manifests").mkdir()
    hanzi = [s for s in TRAIN_SENTENCES if re.fullmatch(r"[\u4e00-\u9fff ]+", s)]
    speakers = {split: [s for s, v in SPEAKERS.items() if v[0] == split] for split in ("train", "dev")}
    texts = {}
    for split, sentences in (("train", hanzi[:40]), ("dev", DEV_SENTENCES[:8])):
        recs, sups = [], []
        for i, words in enumerate(sentences):
            spk = speakers[split][i % len(speakers[split])]
            utt = Utterance(f"zh-{split}-{i:03d}", split, spk, words)
            path = root / "audio" / f"{utt.id}.wav"
            path.write_bytes(speak(utt))
            rec = Recording.from_file(path, recording_id=utt.id)
            recs.append(rec)
            sups.append(SupervisionSegment(id=utt.id, recording_id=utt.id, start=0.0, duration=rec.duration,
                                           text=words.replace(" ", ""), language="Chinese", speaker=spk))
        RecordingSet.from_recordings(recs).to_file(root / "manifests" / f"synth_recordings_{split}.jsonl.gz")
        SupervisionSet.from_segments(sups).to_file(root / "manifests" / f"synth_supervisions_{split}.jsonl.gz")
        texts[split] = [s.text for s in sups]
        assert all(sf.info(str(root / "audio" / f"{s.id}.wav")).samplerate == 16000 for s in sups)
    compute_features(root / "manifests", root / "fbank", "synth", ["train", "dev"], FeatureConfig(kind="fbank"),
                     num_jobs=1)
    CharTokenizer.from_texts(texts["train"], unk=True).save(root / "lang")
    return root
