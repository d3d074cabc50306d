"""One CER (issue 11, DESIGN.md convention 10): the dev CER `ds2 train` logs for an epoch is the
%CER `ds2 decode --method greedy` gives for that epoch's checkpoint, in the same integer counts
(character errors and reference characters, spaces not counted), with one process and with two
under torchrun; and `ds2 average` measures best.pt as `ds2 decode` scores it.

A tiny model trained for real on the tiny espeak-ng corpus, decoded by the real `ds2` command."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lhotse import CutSet

from ds2.score import chars_of, parse_wer_file

DS2 = str(Path(sys.executable).with_name("ds2"))
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TINY_MODEL = {"conv_channels": [4], "conv_kernels": [[5, 11]], "conv_strides": [[2, 4]], "rnn_layers": 1,
              "rnn_hidden": 32, "feature_norm": "utterance"}
# oneDNN limited to AVX2: bfloat16 is emulated, so `ds2 decode` (dtype auto) runs in float32 like training
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
LAUNCHERS = {"one process": [DS2], "torchrun 2 processes": [TORCHRUN, "--standalone", "--nproc-per-node", "2", DS2]}


def write_config(path: Path, **train) -> Path:
    # lr high enough that the model spells something after 2 epochs (not only blanks: all deletions
    # would agree whatever the scoring)
    defaults = {"epochs": 2, "max_duration": 1000, "max_cuts": 4, "lr": 5e-3, "warmup_steps": 2,
                "spec_augment": False, "num_workers": 0, "log_interval": 1, "save_every_steps": 0, "seed": 7,
                "threads": 1, "dtype": "float32", "check_largest_batch": False}
    path.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": {**defaults, **train}}))
    return path


def ds2(args: list[str], launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([*(launcher or [DS2]), *args], capture_output=True, text=True, env=ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def train(data: Path, lang: Path, exp: Path, config: Path, launcher: list[str] | None = None):
    return ds2(["train", "--exp-dir", str(exp), "--train-cuts", str(data / "fbank/synth_cuts_train.jsonl.gz"),
                "--dev-cuts", str(data / "fbank/synth_cuts_dev.jsonl.gz"),
                "--stats", str(data / "fbank/synth_stats_train.pt"), "--lang-dir", str(lang), "--config", str(config)],
               launcher)


def decode_greedy(exp: Path, checkpoint: Path, dev: Path):
    """%CER of `ds2 decode --method greedy` with `checkpoint` on `dev`, and its hypotheses."""
    ds2(["decode", str(exp), "--checkpoint", str(checkpoint), "--cuts", f"dev={dev}", "--method", "greedy",
         "--num-jobs", "1"])
    out = exp / "decode_dev_greedy"
    hyps = [ast.literal_eval(line.split("hyp=", 1)[1]) for line in (out / "recogs.txt").read_text().splitlines()
            if "\thyp=" in line]
    return parse_wer_file(out / "wer.txt")["CER"], hyps


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_logged_dev_cer_is_the_greedy_decode_cer_of_the_checkpoint(tiny_corpus, lang, tmp_path, launcher):
    dev = tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz"
    exp = tmp_path / "exp"
    train(tiny_corpus, lang, exp, write_config(tmp_path / "conf.yaml"), LAUNCHERS[launcher])
    epochs = json.loads((exp / "log/history.json").read_text())["epochs"]
    log = (exp / "log/train.log").read_text()
    ref_chars = sum(len(chars_of(" ".join(s.text for s in c.supervisions))) for c in CutSet.from_file(dev))
    assert len(epochs) == 2
    for e in epochs:
        cer, hyps = decode_greedy(exp, exp / f"checkpoints/epoch-{e['epoch'] + 1}.pt", dev)
        # the same integers: every dev cut counted once (not twice under DDP), spaces not counted
        assert (e["dev_char_errors"], e["dev_chars"]) == (cer.errors, cer.ref) == (cer.errors, ref_chars)
        assert f"{100 * e['dev_cer']:.2f}" == f"{cer.rate:.2f}"
        line = re.search(rf"epoch {e['epoch'] + 1}: .* dev CER ([\d.]+)% \((\d+) / (\d+)\)", log)
        assert line and line.groups() == (f"{cer.rate:.2f}", str(cer.errors), str(cer.ref)), line
        assert any(hyps), "the model spells nothing: the comparison would be all deletions"
    best, _ = decode_greedy(exp, exp / "checkpoints/best.pt", dev)
    assert min(e["dev_cer"] for e in epochs) == best.errors / best.ref
    if launcher == "one process":  # averaging measures best.pt as decoding scores it
        ds2(["average", str(exp), "--num", "2", "--dev-cuts", str(dev)])
        report = json.loads((exp / "checkpoints/averaged.json").read_text())
        assert report["dev_cer_best"] == best.errors / best.ref
        if report["chosen"] == "averaged.pt":
            averaged, _ = decode_greedy(exp, exp / "checkpoints/averaged.pt", dev)
            assert report["dev_cer_averaged"] == averaged.errors / averaged.ref


def test_ranks_share_the_one_process_eval_batches(tiny_corpus):
    """Under DDP each rank validates every other batch of the one-process sequence: the batches
    `ds2 decode` makes, none repeated or left out (Lhotse's own rank split pads with duplicates)."""
    from ds2.data.sampler import make_eval_sampler

    cuts = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz").subset(first=13).to_eager()
    one = [[c.id for c in b] for b in make_eval_sampler(cuts, max_duration=10.0)]
    assert len(one) >= 3
    for world in (2, 3):
        shares = [[[c.id for c in b] for b in make_eval_sampler(cuts, 10.0, world, rank)] for rank in range(world)]
        assert [b for rank in range(world) for b in one[rank::world]] == [b for s in shares for b in s]
