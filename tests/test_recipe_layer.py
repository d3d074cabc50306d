"""The recipe layer: egs/asr.sh under a new corpus, and every recipe's --help.

The slow tests write the recipe a user adding a corpus would write, `egs/tiny/`: a run.sh of its
options and stage 1, and local/prepare.py (corpus-only code) that lays out a tiny espeak-ng
corpus under two training sets `train_all` and `train-extra`, a dev set `dev_clean` and the
test sets `test_clean` and `test-other`. Everything after stage 1 is egs/asr.sh.
The fast ones run `egs/<recipe>/run.sh --help` of every recipe of the repository.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RUN_SH = """#!/usr/bin/env bash
# A tiny corpus with set names that are not train/dev/test.
set -euo pipefail
cd "$(dirname "$0")"

num_train=24            # training utterances, split over two training sets

prefix=tiny
train_sets="train_all train-extra"
dev_set=dev_clean
test_sets="test_clean test-other"
token_type=char-en
lm_text=data/manifests/tiny_lm_text.txt

stage1_prepare() {
  run_stage data/.done/stage1.prepare python local/prepare.py data/manifests --num-train "$num_train"
}

. ../asr.sh
"""

PREPARE_PY = '''"""Stage 1 of egs/tiny: a synthetic corpus laid out under set names with '_' and '-'."""
import argparse
import shutil
from pathlib import Path

from lhotse import RecordingSet, SupervisionSet

from ds2.corpora.synth import SynthOptions, prepare_synth

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--num-train", type=int, required=True)
args = parser.parse_args()
tmp = args.out.parent / "synth_manifests"
args.out.mkdir(parents=True, exist_ok=True)
prepare_synth(tmp, args.out.parent / "audio", SynthOptions(num_train=args.num_train, num_dev=6, num_test=8,
              num_dev_voices=3, num_test_voices=3, seed=5), num_jobs=2)
layout = {"train_all": ("train", 0, 2), "train-extra": ("train", 1, 2), "dev_clean": ("dev", 0, 1),
          "test_clean": ("test", 0, 2), "test-other": ("test", 1, 2)}
for name, (split, part, parts) in layout.items():
    recs = RecordingSet.from_file(tmp / f"synth_recordings_{split}.jsonl.gz")
    sups = SupervisionSet.from_file(tmp / f"synth_supervisions_{split}.jsonl.gz")
    ids = sorted(r.id for r in recs)[part::parts]
    recs.filter(lambda r: r.id in ids).to_file(args.out / f"tiny_recordings_{name}.jsonl.gz")
    sups.filter(lambda s: s.recording_id in ids).to_file(args.out / f"tiny_supervisions_{name}.jsonl.gz")
# a small LM text (the training sentences) keeps the graphs quick to build
texts = [s.text for s in SupervisionSet.from_file(tmp / "synth_supervisions_train.jsonl.gz")]
(args.out / "tiny_lm_text.txt").write_text("\\n".join(texts) + "\\n")
shutil.rmtree(tmp)
'''

OVERRIDES = ("train.epochs=3 train.max_duration=30 train.lr=1e-2 train.warmup_steps=5 model.rnn_layers=1 "
             "model.rnn_hidden=32 model.conv_channels=[4] train.num_workers=0")
SETS = ("dev_clean", "test_clean", "test-other")
METHODS = ("greedy", "ctc-graph", "beam", "hlg", "nbest-rescore")


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("repo")
    (root / "egs" / "tiny" / "local").mkdir(parents=True)
    (root / "egs" / "tiny" / "conf").mkdir()
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    shutil.copy(REPO / "egs" / "synth" / "conf" / "ds2.yaml", root / "egs" / "tiny" / "conf" / "ds2.yaml")
    (root / "utils").symlink_to(REPO / "utils")
    recipe = root / "egs" / "tiny"
    (recipe / "run.sh").write_text(RUN_SH)
    (recipe / "local" / "prepare.py").write_text(PREPARE_PY)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    proc = subprocess.run(["bash", "run.sh", "--overrides", OVERRIDES], cwd=recipe, env=env, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"run.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return recipe, proc


@pytest.mark.slow
def test_results_have_a_row_per_set_and_method(tiny_recipe):
    recipe, _ = tiny_recipe
    results = (recipe / "RESULTS.md").read_text()
    header = next(line for line in results.splitlines() if line.startswith("| experiment | method |"))
    for s in SETS:
        assert f"{s} %WER" in header and f"{s} %CER" in header
    for method in METHODS:
        row = next(line for line in results.splitlines() if line.startswith(f"| ds2 | {method} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][2:]
        assert len(cells) == 2 * len(SETS) and all(c.replace(".", "").isdigit() for c in cells), row
        for s in SETS:  # each detail line is the set's own wer.txt
            wer_txt = (recipe / "exp" / "ds2" / f"decode_{s}_{method}" / "wer.txt").read_text()
            wer_line = next(line for line in wer_txt.splitlines() if line.startswith("%WER"))
            assert f"| ds2 | {method} | {s} | {wer_line} |" in results


@pytest.mark.slow
def test_best_dev_cer_is_the_greedy_dev_row(tiny_recipe):
    """Training's validation, averaging's choice and `ds2 decode --method greedy` use one CER."""
    recipe, _ = tiny_recipe
    results = (recipe / "RESULTS.md").read_text()
    best = re.search(r"best dev CER ([\d.]+)%", results).group(1)
    greedy = next(line for line in results.splitlines() if line.startswith("| ds2 | greedy |"))
    assert best == [c.strip() for c in greedy.strip("|").split("|")][3], (best, greedy)


@pytest.mark.slow
def test_two_training_sets_are_combined_and_give_the_statistics(tiny_recipe):
    recipe, _ = tiny_recipe
    from lhotse import CutSet

    feats = recipe / "data" / "fbank"
    combined = CutSet.from_file(feats / "tiny_cuts_train_all+train-extra.jsonl.gz")
    parts = [CutSet.from_file(feats / f"tiny_cuts_{s}.jsonl.gz") for s in ("train_all", "train-extra")]
    ids = [list(p.ids) for p in parts]
    assert sorted(combined.ids) == sorted(ids[0] + ids[1]) and ids[0] and ids[1]
    assert (feats / "tiny_stats_train_all+train-extra.pt").exists()
    assert not list(feats.glob("tiny_stats_train_all.pt"))
    config = (recipe / "exp" / "ds2" / "config.yaml").read_text()
    assert "train.dtype:" in config.splitlines()[0]


@pytest.mark.slow
def test_the_model_learns(tiny_recipe):
    """A model that learns nothing (a broken optimizer step, labels that do not match the
    audio, zero learning rate) keeps the loss of its first epoch; this one must not."""
    recipe, _ = tiny_recipe
    epochs = json.loads((recipe / "exp" / "ds2" / "log" / "history.json").read_text())["epochs"]
    assert len(epochs) == 3
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"], epochs
    assert epochs[-1]["dev_loss"] < 0.8 * epochs[0]["dev_loss"], epochs


@pytest.mark.slow
def test_help_lists_the_recipe_and_the_shared_options(tiny_recipe):
    recipe, _ = tiny_recipe
    out = subprocess.run(["bash", "run.sh", "--help"], cwd=recipe, capture_output=True, text=True, check=True).stdout
    assert "A tiny corpus with set names" in out
    for option in ("--num-train 24", "--stage 1", "--stop-stage 9", "--config conf/ds2.yaml",
                   '--methods "greedy ctc-graph beam hlg nbest-rescore"', "--avg 2"):
        assert option in out, option


# -- fast: every recipe's --help -----------------------------------------------------------------

RECIPES = sorted(p.parent.name for p in (REPO / "egs").glob("*/run.sh"))
_ASSIGNMENT = re.compile(r"^([a-z][a-z0-9_]*)=(?!\()(.*)$")  # `name=value  # what` (not an array)
_DEFAULT = re.compile(r'^: "\$\{([a-z][a-z0-9_]*):=(.*?)\}"')  # `: "${name:=value}"  # what`


def declared_options(script: Path, assignments: bool = True) -> dict[str, str]:
    """The option variables a recipe file declares at its top level, with their default values as
    bash reads them: `name=value` lines (of run.sh, with `assignments`; egs/asr.sh's are derived
    after the options are parsed) and `: "${name:=value}"` lines (egs/asr.sh's options, and a
    recipe's own defaults of them). Names with a leading underscore are internal."""
    options = {}
    for line in script.read_text().splitlines():
        if assignments and (m := _ASSIGNMENT.match(line)):
            words = shlex.split(m.group(2), comments=True)
            options[m.group(1)] = words[0] if words else ""
        elif m := _DEFAULT.match(line):
            value = m.group(2)  # within "${...}": spaces are the value's, quotes are not
            options[m.group(1)] = shlex.split(value)[0] if value[:1] in "\"'" and value else value
    return options


def test_every_recipe_is_found():
    assert {"synth", "synth_zh", "aishell", "mydata"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_help_lists_every_option_of_the_recipe_and_egs_asr_sh_with_its_default(recipe):
    """`run.sh --help` exits 0 and shows each option the recipe and egs/asr.sh declare, once, with
    the default the recipe runs with (a recipe's own default of a shared option wins), and its
    comment; so an option declared without a comment, which --help would leave out, fails here."""
    run_sh = REPO / "egs" / recipe / "run.sh"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    out = subprocess.run(["bash", str(run_sh), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    shown = {}
    for line in out.stdout.split("Options (current values):\n", 1)[1].splitlines():
        m = re.fullmatch(r"  --([a-z0-9-]+) (\"[^\"]*\"|\S+) #(.*)", line)
        assert m, line
        assert m.group(3).strip(), f"{recipe}: --{m.group(1)} has no description"
        assert m.group(1) not in shown, f"{recipe}: --{m.group(1)} is listed twice"
        shown[m.group(1)] = m.group(2)
    expected = {**declared_options(REPO / "egs" / "asr.sh", assignments=False), **declared_options(run_sh)}
    for name, value in expected.items():
        option = "--" + name.replace("_", "-")
        assert option[2:] in shown, f"{recipe}: {option} is missing from --help (declared without a comment?)"
        assert shown[option[2:]] == (f'"{value}"' if not value or re.search(r"\s", value) else value), option
    assert set(shown) == {n.replace("_", "-") for n in expected}
