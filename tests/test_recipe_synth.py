"""End to end: the real egs/synth/run.sh (its stage 1, then egs/asr.sh) on a tiny corpus, two epochs (and
their average)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

# The LMs of the training transcripts: the corpus's whole LM text (27k fortunes) made stage 5's HLG of
# 9 M arcs, 50 s to build and 20 s more to tune and decode with, most of this test's time.
TINY_ARGS = ["--num-train", "30", "--num-dev", "6", "--num-test", "6",
             "--lm-text", "data/manifests/synth_supervisions_train.jsonl.gz",
             "--overrides", "train.epochs=2 train.max_duration=40 model.rnn_layers=1 model.rnn_hidden=32 "
                            "model.conv_channels=[4] train.num_workers=0"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of egs/synth beside a link to utils/, as in the repository."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "egs" / "synth", root / "egs" / "synth",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    (root / "utils").symlink_to(REPO / "utils")
    return root / "egs" / "synth"


def run_recipe(recipe: Path, *args: str, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "run.sh", *TINY_ARGS, *args], cwd=recipe, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def mtimes(recipe: Path) -> dict[str, float]:
    files = [p for d in ("data", "exp") for p in (recipe / d).rglob("*") if p.is_file()]
    return {str(p.relative_to(recipe)): p.stat().st_mtime_ns for p in files}


def test_run_sh_end_to_end_then_reruns_only_what_is_asked(recipe):
    first = run_recipe(recipe)
    results = (recipe / "RESULTS.md").read_text()
    for method in ("greedy", "ctc-graph", "beam", "hlg", "nbest-rescore"):
        assert f"| ds2 | {method} |" in results
        assert (recipe / "exp" / "ds2" / f"decode_test_{method}" / "wer.txt").exists()
    assert "`alpha=" in results and "`lm_scale=" in results  # the tuned weights are shown
    for method in ("beam", "hlg", "nbest-rescore"):
        assert (recipe / "exp" / "ds2" / "tuned" / f"{method}.json").exists()
    assert not list((recipe / "exp" / "ds2" / "tuned").glob("greedy*"))  # nothing to tune
    for name in ("H", "L", "G", "HLG"):
        assert (recipe / "data" / "lang_char" / f"{name}.fst").exists()
    assert "perplexity on" in first.stdout
    assert "dev %WER" in results and "test %WER" in results and "heldout %WER" in results  # festival HTS
    assert "ds2 prepare synth data/manifests" in results  # commands recorded by the stage markers
    assert "git:" in results and "torch" in results
    for split in ("dev", "test"):
        wer = (recipe / "exp" / "ds2" / f"decode_{split}_greedy" / "wer.txt").read_text()
        assert "%WER" in wer and "%CER" in wer
        assert (recipe / "exp" / "ds2" / f"decode_{split}_greedy" / "errs.txt").exists()
    assert (recipe / "exp" / "ds2" / "curves.png").stat().st_size > 1000
    assert (recipe / "exp" / "ds2" / "config.yaml").exists()
    assert "Stage 9" in first.stderr
    assert "decoded with `" in results  # averaged.pt or best.pt, chosen on dev

    # Re-running after it finished does no work.
    before = mtimes(recipe)
    again = run_recipe(recipe)
    # markers: prepare, features, tokens, 2 LMs, graph, train, average, 5 tunings, 5 decodings
    assert again.stderr.count("skipping:") == 18
    assert mtimes(recipe) == before

    # Deleting one marker redoes only that stage.
    (recipe / "exp" / ".done" / "stage8.decode.ds2.beam").unlink()
    run_recipe(recipe)
    after = mtimes(recipe)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed and all(k.startswith(("exp/ds2/decode_dev_beam/", "exp/ds2/decode_test_beam/", "exp/ds2/decode_heldout_beam/",
                                         "exp/.done/stage8.decode.ds2.beam")) for k in changed), changed

    # A failing stage leaves no marker, so it is redone rather than trusted next time.
    failed = run_recipe(recipe, "--stage", "8", "--stop-stage", "8", "--tag", "missing", check=False)
    assert failed.returncode != 0
    assert not (recipe / "exp" / ".done" / "stage8.decode.missing.greedy").exists()
