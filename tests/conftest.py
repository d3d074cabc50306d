"""Shared fixtures: a tiny real corpus (espeak-ng audio, Lhotse manifests, fbank features)."""

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
