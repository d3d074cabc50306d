"""The augmentation options of the shared stages (egs/asr.sh): --speed-perturb (stage 2) and --noise
with a MUSAN copy on disk (--musan-dir: stage 2 prepares it and computes its features, stage 6
trains with train.noise_cuts), in a tiny recipe over the test corpus, stages 1-3 and 6."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lhotse import CutSet, RecordingSet
from musan_fixture import write_musan

from tests.conftest import REPO

pytestmark = pytest.mark.slow

RUN_SH = """#!/usr/bin/env bash
# The tiny test corpus, its manifests copied in stage 1.
set -euo pipefail
cd "$(dirname "$0")"

prefix=synth
train_sets=train
dev_set=dev
test_sets=test
token_type=char-en
lm_text=data/manifests/synth_lm_text.txt

stage1_prepare() {
  mkdir -p data && run_stage data/.done/stage1.prepare cp -r "$CORPUS/manifests" data/manifests
}

. ../asr.sh
"""
OVERRIDES = ("train.epochs=1 train.max_duration=60 train.warmup_steps=2 train.num_workers=0 train.save_every_steps=0 "
             "train.check_largest_batch=false model.rnn_layers=1 model.rnn_hidden=16 model.conv_channels=[4] "
             "train.noise_prob=1 train.noise_snr=[5,15]")


@pytest.fixture(scope="module")
def recipe(tiny_corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("repo")
    recipe = root / "egs" / "tiny"
    (recipe / "conf").mkdir(parents=True)
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    shutil.copy(REPO / "egs" / "synth" / "conf" / "ds2.yaml", recipe / "conf" / "ds2.yaml")
    (root / "utils").symlink_to(REPO / "utils")
    (recipe / "run.sh").write_text(RUN_SH)
    musan = write_musan(root / "corpora")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
               CORPUS=str(tiny_corpus), OMP_NUM_THREADS="1")
    options = ["--speed-perturb", "0.9 1.1", "--noise", "noise", "--musan-dir", str(musan), "--num-jobs", "1",
               "--avg", "1", "--overrides", OVERRIDES]
    logs = []
    for stages in (["--stop-stage", "3"], ["--stage", "6", "--stop-stage", "6"]):  # no LM, graphs or decoding
        proc = subprocess.run(["bash", "run.sh", *stages, *options], cwd=recipe, env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"run.sh {' '.join(stages)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        logs.append(proc.stderr)
    return recipe, "".join(logs)


def test_speed_perturbation_triples_train_only(recipe, tiny_corpus):
    recipe, _ = recipe
    recordings = RecordingSet.from_file(tiny_corpus / "manifests" / "synth_recordings_train.jsonl.gz")
    train = CutSet.from_file(recipe / "data" / "fbank" / "synth_cuts_train.jsonl.gz")
    suffixes = sorted(cut.id.rsplit("_sp", 1)[1] if "_sp" in cut.id else "" for cut in train)
    assert suffixes == [""] * len(recordings) + ["0.9"] * len(recordings) + ["1.1"] * len(recordings)
    for split in ("dev", "test"):
        assert not [c.id for c in CutSet.from_file(recipe / "data" / "fbank" / f"synth_cuts_{split}.jsonl.gz")
                    if "_sp" in c.id]
    assert (recipe / "data" / ".done" / "stage2.features.fbank.sp0.9,1.1").is_file()


def test_musan_noise_is_prepared_and_trained_with(recipe):
    recipe, log = recipe
    noise_cuts = CutSet.from_file(recipe / "data" / "fbank" / "musan_cuts_noise.jsonl.gz")
    assert len(noise_cuts) == 3 and all(c.has_features for c in noise_cuts)
    assert not (recipe / "data" / "download").exists()  # the copy on disk, no download
    train = yaml.safe_load((recipe / "exp" / "ds2" / "config.yaml").read_text())["train"]
    assert train["noise_cuts"] == "data/fbank/musan_cuts_noise.jsonl.gz"
    assert (train["noise_prob"], train["noise_snr"]) == (1.0, [5.0, 15.0])  # --overrides come after the noise
    assert "Stage 6: train exp/ds2 on train (noise: MUSAN noise)" in log
    train_log = (recipe / "exp" / "ds2" / "log" / "train.log").read_text()
    assert "noise: 3 cuts, 0.01 hours, from data/fbank/musan_cuts_noise.jsonl.gz, mixed into 100% of the " \
           "training utterances at 5-15 dB SNR" in train_log
    assert (recipe / "exp" / "ds2" / "checkpoints" / "best.pt").is_file()


def test_help_shows_the_augmentation_options(recipe):
    recipe, _ = recipe
    out = subprocess.run(["bash", "run.sh", "--help"], cwd=recipe, capture_output=True, text=True, check=True).stdout
    for option in ('--speed-perturb ""', '--noise ""', '--musan-dir ""',
                   "--musan-base-url https://www.openslr.org/resources", "train.spec_augment=true"):
        assert option in out, option
