"""Issue 10 on the training side: bad input stops `ds2 train` / `ds2 average` with a one-line
message (and no traceback) before anything is written, never with a silently wrong number; and
what can go on (too few cuts for the buckets, a truncated newest checkpoint) goes on correctly.

Every case runs the real `ds2` command on the tiny espeak-ng corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lhotse import CutSet

from ds2.checkpoint import CheckpointError, find_checkpoint, load_checkpoint

DS2 = str(Path(sys.executable).with_name("ds2"))
TINY_MODEL = {"conv_channels": [4], "conv_kernels": [[5, 11]], "conv_strides": [[2, 4]], "rnn_layers": 2,
              "rnn_hidden": 16, "feature_norm": "utterance"}
# oneDNN and ATen limited to AVX2: bfloat16 is emulated on every x86 CPU, so dtype auto is float32
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", **AVX2}


def write_config(path: Path, model: dict | None = None, **train) -> Path:
    defaults = {"epochs": 1, "max_duration": 1000, "max_cuts": 8, "lr": 3e-3, "warmup_steps": 2,
                "spec_augment": False, "num_workers": 0, "log_interval": 1, "save_every_steps": 0, "seed": 7,
                "threads": 1, "check_largest_batch": False}
    path.write_text(yaml.safe_dump({"model": {**TINY_MODEL, **(model or {})}, "train": {**defaults, **train}}))
    return path


def train_args(data: Path, lang: Path, exp: Path, config: Path, train_cuts: Path | None = None,
               dev_cuts: Path | None = None) -> list[str]:
    return ["train", "--exp-dir", str(exp), "--train-cuts", str(train_cuts or data / "fbank/synth_cuts_train.jsonl.gz"),
            "--dev-cuts", str(dev_cuts or data / "fbank/synth_cuts_dev.jsonl.gz"),
            "--stats", str(data / "fbank/synth_stats_train.pt"), "--lang-dir", str(lang), "--config", str(config)]


def ds2(args: list[str], ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([DS2, *args], capture_output=True, text=True, env=ENV, timeout=600)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def assert_one_line_error(out: subprocess.CompletedProcess, message: str, status: int | None = None) -> None:
    """Failed with `message` on the error line, and no traceback."""
    assert out.returncode != 0 and (status is None or out.returncode == status), (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], out.stderr[-3000:]


def params(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(ckpt)["model"]


@pytest.fixture(scope="module")
def base_run(tiny_corpus, lang, tmp_path_factory) -> tuple[Path, Path]:
    """A finished 2-epoch run (dtype auto, given as --dtype auto) with a step checkpoint every 2
    steps (the newest 2 kept); and its config. Tests copy it before they change anything."""
    d = tmp_path_factory.mktemp("base")
    config = write_config(d / "conf.yaml", epochs=2, save_every_steps=2, keep_last_steps=2)
    ds2([*train_args(tiny_corpus, lang, d / "exp", config), "--dtype", "auto"])
    return d / "exp", config


def test_dtype_auto_is_float32_where_bfloat16_is_emulated():
    code = "import torch; from ds2.precision import resolve_dtype; print(*resolve_dtype('auto', torch.device('cpu')), sep='|')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    dtype, reason = out.stdout.strip().split("|")
    assert dtype == "float32" and reason.startswith("auto:"), out.stdout


def test_training_records_the_resolved_dtype_not_auto(base_run):
    exp, _ = base_run
    text = (exp / "config.yaml").read_text()
    assert text.startswith("# train.dtype: float32 (auto: "), text[:200]
    assert yaml.safe_load(text)["train"]["dtype"] == "float32"
    assert load_checkpoint(exp / "checkpoints/last.pt")["config"]["train"]["dtype"] == "float32"
    assert "precision: float32 (auto: " in (exp / "log/train.log").read_text()


def test_average_evaluates_in_the_cpu_precision_not_the_trained_one(tiny_corpus, base_run, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(base_run[0], exp)
    for name in ("epoch-1.pt", "epoch-2.pt", "best.pt"):  # as if trained in bfloat16 on a GPU
        ckpt = load_checkpoint(exp / "checkpoints" / name)
        ckpt["config"]["train"]["dtype"] = "bfloat16"
        torch.save(ckpt, exp / "checkpoints" / name)
    out = ds2(["average", str(exp), "--num", "2", "--dev-cuts", str(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz")])
    assert "evaluating on the CPU in float32 (auto: " in out.stderr


def upper_case_copy(src: Path, dst: Path) -> Path:
    """`src` cuts with upper-case transcripts, which the lower-case character tokenizer cannot map."""
    cuts = CutSet.from_file(src).to_eager()
    for cut in cuts:
        for sup in cut.supervisions:
            sup.text = sup.text.upper()
    cuts.to_file(dst)
    return dst


def test_no_cut_kept_in_train_or_dev_stops_before_any_checkpoint(tiny_corpus, lang, tmp_path):
    config = write_config(tmp_path / "conf.yaml")
    n_train = len(CutSet.from_file(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz").to_eager())
    train = upper_case_copy(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz", tmp_path / "train.jsonl.gz")
    out = ds2(train_args(tiny_corpus, lang, tmp_path / "a", config, train_cuts=train), ok=False)
    assert_one_line_error(out, f"train: no cut is left to train on: all {n_train} were dropped "
                               f"({n_train} unmappable transcript")
    assert not (tmp_path / "a/checkpoints").exists()
    n_dev = len(CutSet.from_file(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz").to_eager())
    dev = upper_case_copy(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz", tmp_path / "dev.jsonl.gz")
    out = ds2(train_args(tiny_corpus, lang, tmp_path / "b", config, dev_cuts=dev), ok=False)
    assert_one_line_error(out, f"dev: no cut is left to validate on: all {n_dev} were dropped "
                               f"({n_dev} unmappable transcript")
    assert "dev CER" not in out.stderr and not (tmp_path / "b/checkpoints").exists()


def test_fewer_training_cuts_than_buckets_trains_every_epoch(tiny_corpus, lang, tmp_path):
    cuts = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz").to_eager().subset(first=3)
    train = tmp_path / "train3.jsonl.gz"
    cuts.to_file(train)
    config = write_config(tmp_path / "conf.yaml", epochs=3, max_cuts=1, num_buckets=10)
    out = ds2(train_args(tiny_corpus, lang, tmp_path / "exp", config, train_cuts=train))
    assert "train.num_buckets 10 is more than the 3 training cuts allow" in out.stderr
    assert "using 3 buckets" in out.stderr
    assert all((tmp_path / f"exp/checkpoints/epoch-{i}.pt").exists() for i in (1, 2, 3))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_newest_checkpoints_resume_from_the_newest_that_loads(tiny_corpus, lang, base_run, tmp_path):
    full, config = base_run
    exp = tmp_path / "exp"
    shutil.copytree(full, exp)
    ckpts = exp / "checkpoints"
    steps = sorted(ckpts.glob("step-*.pt"), key=lambda p: int(p.stem[5:]))
    assert len(steps) == 2
    older, newest = steps  # oldest first
    # as if the run stopped in epoch 2 after step `older`, with a damaged last.pt and newest step
    truncate(ckpts / "last.pt")
    truncate(newest)
    (ckpts / "epoch-2.pt").unlink()
    assert load_checkpoint(older)["epoch"] == 1 and load_checkpoint(older)["batches_done"] > 0
    out = ds2([*train_args(tiny_corpus, lang, exp, config), "--resume"])
    assert f"passing over {ckpts / 'last.pt'}, which does not load" in out.stderr
    assert f"passing over {newest}, which does not load" in out.stderr
    assert f"resumed from {older}: epoch 2" in out.stderr
    assert (ckpts / "epoch-2.pt").exists()
    a, b = params(full / "checkpoints/last.pt"), params(ckpts / "last.pt")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    # a named bad checkpoint: one line naming it, from load_checkpoint and from `ds2 average`
    truncate(ckpts / "epoch-1.pt")
    with pytest.raises(CheckpointError, match="epoch-1.pt cannot be read"):
        load_checkpoint(ckpts / "epoch-1.pt")
    out = ds2(["average", str(exp), "--num", "2", "--dev-cuts", str(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz")],
              ok=False)
    assert_one_line_error(out, f"checkpoint {ckpts / 'epoch-1.pt'} cannot be read", status=1)


def test_an_existing_run_is_left_untouched_when_refused(tiny_corpus, lang, base_run, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(base_run[0], exp)
    before = {p: p.read_bytes() for p in (exp / "config.yaml", exp / "log/train.log")}
    out = ds2(train_args(tiny_corpus, lang, exp, base_run[1]), ok=False)
    assert_one_line_error(out, "already holds a training run", status=1)
    assert "--resume" in out.stderr
    out = ds2([*train_args(tiny_corpus, lang, exp, base_run[1]), "--resume", "--set", "model.rnn_hidden=32",
               "--set", "model.rnn_layers=3"], ok=False)
    assert_one_line_error(out, "the model config differs from the one", status=1)
    assert "model.rnn_layers 2 -> 3, model.rnn_hidden 16 -> 32" in out.stderr
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("config_text, overrides, message", [
    ("model: [1, 2\n", [], "is not valid YAML"),
    ("- model\n- train\n", [], "must be a YAML mapping with model: and train: sections, not a list"),
    (None, ["train.lr.x=1"], "train.lr is an option, not a section"),
    (None, ["model.conv_channels=4"], "model.conv_channels must be a list"),
    (None, ["train.dtype=float64"], "train.dtype must be one of auto, float32, bfloat16, float16, not 'float64'"),
    (None, ["train.max_duration=0"], "train.max_duration must be > 0"),
    (None, ["train.lr=nan"], "train.lr must be finite and > 0, not nan"),
    (None, ["model.aux_units=phones"], "model.aux_units must be '' (none) or pinyin, not 'phones'"),
    (None, ["model.aux_units=pinyin", "model.aux_layer=0"], "model.aux_layer must be a recurrent layer, 1 to 2, not 0"),
    (None, ["model.aux_units=pinyin", "model.aux_layer=3"], "model.aux_layer must be a recurrent layer, 1 to 2, not 3"),
    (None, ["model.aux_units=pinyin", "train.aux_weight=0"], "model.aux_units pinyin needs train.aux_weight > 0"),
    ("model:\n  aux_units: pinyin\ntrain:\n  aux_weight: 0.0\n", [],
     "model.aux_units pinyin needs train.aux_weight > 0"),
], ids=["malformed-yaml", "yaml-list", "nested-key", "list-field-scalar", "dtype", "max-duration", "lr-nan",
        "aux-units", "aux-layer-0", "aux-layer-above", "aux-weight-0", "aux-weight-0-in-file"])
def test_bad_config_is_a_one_line_usage_error_before_anything_loads(tiny_corpus, lang, tmp_path, config_text,
                                                                    overrides, message):
    config = write_config(tmp_path / "conf.yaml")
    if config_text is not None:
        config.write_text(config_text)
    args = train_args(tiny_corpus, lang, tmp_path / "exp", config)
    for o in overrides:
        args += ["--set", o]
    out = ds2(args, ok=False)
    assert_one_line_error(out, message, status=2)
    assert not (tmp_path / "exp").exists()


def test_zero_epochs_is_an_error_not_a_missing_best_checkpoint(tiny_corpus, lang, tmp_path):
    out = ds2([*train_args(tiny_corpus, lang, tmp_path / "exp", write_config(tmp_path / "c.yaml")),
               "--set", "train.epochs=0"], ok=False)
    assert_one_line_error(out, "train.epochs must be at least 1, not 0", status=2)
    assert "best checkpoint" not in out.stdout and not (tmp_path / "exp").exists()


def test_an_exp_without_a_checkpoint_says_what_to_run(tmp_path):
    (tmp_path / "exp/checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"has no checkpoint \(no averaged.pt, best.pt or last.pt in .*\): "
                                                r"train first with ds2 train"):
        find_checkpoint(tmp_path / "exp")
    (tmp_path / "exp/checkpoints/step-3.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no finished epoch yet .* --resume"):
        find_checkpoint(tmp_path / "exp")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_checkpoint(tmp_path / "nope")
