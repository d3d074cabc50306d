"""Training at scale, run for real on the tiny espeak-ng corpus: torchrun DDP (gloo) against
one process, SIGKILL mid-epoch and exact resume, checkpoint averaging, and bad data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from ds2.train.average import average_checkpoints
from ds2.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint

DS2 = str(Path(sys.executable).with_name("ds2"))
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TINY_MODEL = {"conv_channels": [4], "conv_kernels": [[5, 11]], "conv_strides": [[2, 4]], "rnn_layers": 2,
              "rnn_hidden": 16, "feature_norm": "utterance"}


def write_config(path: Path, model: dict | None = None, **train) -> Path:
    defaults = {"epochs": 1, "max_duration": 1000, "lr": 3e-3, "warmup_steps": 2, "spec_augment": False,
                "num_workers": 0, "log_interval": 1, "save_every_steps": 0, "seed": 7, "threads": 1}
    path.write_text(yaml.safe_dump({"model": {**TINY_MODEL, **(model or {})}, "train": {**defaults, **train}}))
    return path


def train_args(data: Path, lang: Path, exp: Path, config: Path, train_cuts: Path | None = None) -> list[str]:
    return ["train", "--exp-dir", str(exp), "--train-cuts", str(train_cuts or data / "fbank/synth_cuts_train.jsonl.gz"),
            "--dev-cuts", str(data / "fbank/synth_cuts_dev.jsonl.gz"), "--stats", str(data / "fbank/synth_stats_train.pt"),
            "--lang-dir", str(lang), "--config", str(config)]


def run_ds2(args: list[str], launcher: list[str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([*(launcher or [DS2]), *args], capture_output=True, text=True, env=env, timeout=600, **kw)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def model_params(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(ckpt)["model"]


def step_losses(exp: Path) -> list[float]:
    history = json.loads((exp / "log/history.json").read_text())
    return [s["loss"] for s in history["steps"]]


AUX = {"aux_units": "pinyin", "aux_layer": 1}  # the auxiliary pinyin CTC head on the first recurrent layer


@pytest.mark.parametrize("aux", [False, True], ids=["plain", "aux-pinyin-zh"])
def test_torchrun_two_processes_train_like_one_process_with_the_global_batch(tiny_corpus, lang, request, tmp_path,
                                                                             aux):
    """Also with the auxiliary pinyin head (model.aux_units: pinyin) on real Mandarin speech (the
    AISHELL fixture's sentences read by espeak-ng, char-zh tokens: `tiny_zh_corpus`): the head's
    CTC loss is in the gradient each rank reduces, and the two runs end with the same head too."""
    data = request.getfixturevalue("tiny_zh_corpus") if aux else tiny_corpus
    lang = data / "lang" if aux else lang
    model = AUX if aux else None
    # 32 cuts in SortaGrad order: each step, rank 0 takes 2 cuts and rank 1 the next 2; one
    # process with batches of 4 sees the same global batches.
    cuts = CutSet.from_file(data / "fbank/synth_cuts_train.jsonl.gz").sort_by_duration().subset(first=32)
    train = tmp_path / "train32.jsonl.gz"
    cuts.to_file(train)
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    # float32 on every CPU: `dtype: auto` trains in bfloat16 where the CPU has it natively, and there
    # two batches of 2 round otherwise than one of 4 (step losses ~1e-4 apart on an AVX-512-BF16 EPYC)
    run_ds2(train_args(data, lang, ddp, write_config(tmp_path / "ddp.yaml", model, max_cuts=2, dtype="float32"),
                       train), launcher=[TORCHRUN, "--standalone", "--nproc-per-node", "2", DS2])
    one_config = write_config(tmp_path / "one.yaml", model, max_cuts=4, max_duration=2000, dtype="float32")
    run_ds2(train_args(data, lang, one, one_config, train))
    losses_ddp, losses_one = step_losses(ddp), step_losses(one)
    assert len(losses_ddp) == len(losses_one) == 8
    assert np.allclose(losses_ddp, losses_one, rtol=1e-4), (losses_ddp, losses_one)
    # (Mandarin has ~12 frames a character: the per-token loss of SortaGrad's ever longer batches
    # grows with their frames per character more than 8 steps lower it)
    assert aux or losses_one[-1] < losses_one[0]
    a, b = model_params(ddp / "checkpoints/last.pt"), model_params(one / "checkpoints/last.pt")
    assert a.keys() == b.keys() and ("aux_head.weight" in a) == aux
    diffs = torch.cat([(a[n].float() - b[n].float()).abs().flatten() for n in a])
    # Float sums in another order differ in the last bits; Adam turns a gradient that is ~0 (so
    # all rounding) into a step of up to lr, so a few parameters may differ by up to lr.
    assert diffs.max() < 3e-3 and diffs.median() < 1e-7, (diffs.max(), diffs.median())
    if aux:
        # The logged loss is the tokens' CTC alone: before the first update it is that of the same
        # model without the head (built last, it leaves the other weights' initialisation as it
        # is); after it, the head's loss has moved the shared layers.
        plain = tmp_path / "plain"
        run_ds2(train_args(data, lang, plain, write_config(tmp_path / "plain.yaml", max_cuts=4, max_duration=2000,
                                                           dtype="float32"), train))
        losses_plain = step_losses(plain)
        assert losses_plain[0] == pytest.approx(losses_one[0], rel=1e-6), (losses_plain, losses_one)
        # (one process each, float32: the same sums in the same order, so any difference is the head's)
        assert all(abs(p - o) > 1e-5 * abs(o) for p, o in zip(losses_plain[1:], losses_one[1:])), (losses_plain,
                                                                                                  losses_one)
        c = model_params(plain / "checkpoints/last.pt")
        assert not torch.allclose(c["rnns.0.rnn.weight_ih_l0"], b["rnns.0.rnn.weight_ih_l0"], atol=1e-4)
        # the checkpoint loads for decoding, head and all
        net, tokenizer, cfg = model_from_checkpoint(load_checkpoint(find_checkpoint(one)))
        assert cfg.model.aux_units == "pinyin" and net.aux_head is not None and tokenizer.vocab_size > 100


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, lang, tmp_path_factory) -> tuple[Path, Path]:
    """A 3-epoch run with dropout (so the RNG state matters), a DataLoader worker (so batches are
    prefetched ahead of training) and a step checkpoint every 3 steps; and its config."""
    d = tmp_path_factory.mktemp("resume")
    config = write_config(d / "conf.yaml", model={"dropout": 0.2}, epochs=3, max_cuts=2, num_workers=1,
                          save_every_steps=3, keep_last_steps=2)
    run_ds2(train_args(tiny_corpus, lang, d / "full", config))
    return d / "full", config


@pytest.fixture(scope="module")
def uninterrupted_aux(tiny_zh_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """`uninterrupted` with the auxiliary pinyin head, on the tiny Mandarin corpus."""
    d = tmp_path_factory.mktemp("resume_aux")
    config = write_config(d / "conf.yaml", model={"dropout": 0.2, **AUX}, epochs=3, max_cuts=2, num_workers=1,
                          save_every_steps=3, keep_last_steps=2)
    run_ds2(train_args(tiny_zh_corpus, tiny_zh_corpus / "lang", d / "full", config))
    return d / "full", config


@pytest.mark.parametrize("run", ["uninterrupted", "uninterrupted_aux"], ids=["plain", "aux-pinyin-zh"])
def test_sigkill_mid_epoch_then_resume_ends_with_the_uninterrupted_parameters(tiny_corpus, lang, request, tmp_path,
                                                                               run):
    full, config = request.getfixturevalue(run)
    if run == "uninterrupted_aux":  # with the auxiliary head, on the Mandarin corpus
        tiny_corpus = request.getfixturevalue("tiny_zh_corpus")
        lang = tiny_corpus / "lang"
        assert "aux_head.weight" in model_params(full / "checkpoints/last.pt")
    exp = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([DS2, *train_args(tiny_corpus, lang, exp, config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    target = exp / "checkpoints/step-9.pt"  # in epoch 1 (about 20 steps per epoch)
    deadline = time.time() + 300
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and target.exists()
    assert not (exp / "checkpoints/epoch-1.pt").exists()  # killed mid-epoch
    assert len(list((exp / "checkpoints").glob("step-*.pt"))) <= 2  # keep_last_steps
    out = run_ds2([*train_args(tiny_corpus, lang, exp, config), "--resume"])
    assert "resumes after its first" in out.stderr
    a, b = model_params(full / "checkpoints/last.pt"), model_params(exp / "checkpoints/last.pt")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    assert step_losses(full) == pytest.approx(step_losses(exp), rel=1e-6)


def test_without_resume_an_existing_run_is_not_overwritten(tiny_corpus, lang, uninterrupted):
    full, config = uninterrupted
    out = subprocess.run([DS2, *train_args(tiny_corpus, lang, full, config)], capture_output=True, text=True)
    assert out.returncode != 0 and "--resume" in out.stderr


def test_average_is_the_mean_and_decoding_uses_it_only_when_better_on_dev(tiny_corpus, uninterrupted, tmp_path):
    full, _ = uninterrupted
    exp = tmp_path / "avg"
    shutil.copytree(full, exp)
    epochs = [exp / f"checkpoints/epoch-{i}.pt" for i in (2, 3)]
    avg = average_checkpoints(epochs)
    name = "fc.0.weight"
    expected = (load_checkpoint(epochs[0])["model"][name] + load_checkpoint(epochs[1])["model"][name]) / 2
    assert torch.allclose(avg["model"][name], expected, atol=1e-7)
    out = run_ds2(["average", str(exp), "--num", "2", "--dev-cuts", str(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz")])
    report = json.loads((exp / "checkpoints/averaged.json").read_text())
    assert report["chosen"] in out.stdout
    better = report["dev_cer_averaged"] < report["dev_cer_best"]
    assert (exp / "checkpoints/averaged.pt").exists() == better
    assert find_checkpoint(exp).name == ("averaged.pt" if better else "best.pt")
    bad = subprocess.run([DS2, "average", str(exp), "--num", "9", "--dev-cuts",
                          str(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz")], capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot average the last 9" in bad.stderr


def plant_bad_items(data: Path, out: Path) -> dict[str, str]:
    """Train manifests of `data` plus one bad item of each kind; returns {id: kind}."""
    recs = RecordingSet.from_file(data / "manifests/synth_recordings_train.jsonl.gz").to_eager()
    sups = SupervisionSet.from_file(data / "manifests/synth_supervisions_train.jsonl.gz").to_eager()
    good_rec, good_sup = next(iter(recs)), next(iter(sups))
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True)
    new_recs, new_sups, planted = [], [], {}

    def add(uid: str, kind: str, path: Path, text: str, rec: Recording | None = None):
        rec = rec or Recording.from_file(path, recording_id=uid)
        new_recs.append(rec)
        new_sups.append(SupervisionSegment(id=uid, recording_id=uid, start=0.0, duration=rec.duration, text=text))
        planted[uid] = kind

    wav = Path(good_rec.sources[0].source)
    truncated = audio_dir / "truncated.wav"
    shutil.copy(wav, truncated)
    full = Recording.from_file(truncated, recording_id="bad-truncated")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 3])  # the header still says full
    add("bad-truncated", "truncated wav", truncated, good_sup.text, rec=full)
    empty = audio_dir / "empty.wav"
    empty.write_bytes(b"")
    add("bad-zero-length", "zero-length file", empty, good_sup.text,
        rec=Recording.from_dict({**full.to_dict(), "id": "bad-zero-length",
                                 "sources": [{"type": "file", "channels": [0], "source": str(empty)}]}))
    add("bad-empty-text", "empty transcript", wav, "", rec=Recording.from_dict({**good_rec.to_dict(), "id": "bad-empty-text"}))
    add("bad-oov-text", "unmappable transcript", wav, "caf\u00e9 n\u00b042 \u4f60\u597d",
        rec=Recording.from_dict({**good_rec.to_dict(), "id": "bad-oov-text"}))
    short = audio_dir / "short.wav"
    sf.write(short, np.zeros(1600, dtype=np.float32), 16000)  # 0.1 s for a long sentence
    add("bad-too-short", "too short for its label", short, "this sentence is far too long for a tenth of a second")
    manifests = out / "manifests"
    manifests.mkdir()
    RecordingSet.from_recordings([*recs, *new_recs]).to_file(manifests / "synth_recordings_train.jsonl.gz")
    SupervisionSet.from_segments([*sups, *new_sups]).to_file(manifests / "synth_supervisions_train.jsonl.gz")
    for kind in ("recordings", "supervisions"):
        shutil.copy(data / f"manifests/synth_{kind}_dev.jsonl.gz", manifests / f"synth_{kind}_dev.jsonl.gz")
    return planted


def nan_features_cut(cut, uid: str, storage: Path):
    """A copy of `cut` whose features are all NaN: the loss of its batch is not finite."""
    from lhotse import NumpyFilesWriter
    from lhotse.utils import fastcopy

    with NumpyFilesWriter(storage) as writer:
        key = writer.write(uid, np.full_like(cut.load_features(), np.nan))
    features = fastcopy(cut.features, storage_type=writer.name, storage_path=str(storage), storage_key=key)
    return fastcopy(cut, id=uid, features=features)


def test_planted_bad_items_are_named_counted_and_skipped(tiny_corpus, lang, tmp_path):
    planted = plant_bad_items(tiny_corpus, tmp_path)
    feats = run_ds2(["features", str(tmp_path / "manifests"), str(tmp_path / "fbank"), "--prefix", "synth",
                     "--splits", "train,dev", "--num-jobs", "1"])
    cuts = CutSet.from_file(tmp_path / "fbank/synth_cuts_train.jsonl.gz").to_eager()
    victim = next(c for c in cuts if not c.id.startswith("bad-"))
    CutSet.from_cuts([*cuts, nan_features_cut(victim, "bad-nan-features", tmp_path / "nan")]).to_file(
        tmp_path / "fbank/synth_cuts_train.jsonl.gz")
    config = write_config(tmp_path / "conf.yaml", max_cuts=1)
    train = run_ds2(train_args(tmp_path, lang, tmp_path / "exp", config))
    log = feats.stderr + train.stderr
    for uid in planted:
        assert uid in log, uid
    assert "bad-nan-features" in log and "non-finite loss" in log
    assert "dropped 1 cuts (empty transcript)" in log
    assert "dropped 1 cuts (unmappable transcript)" in log
    assert "dropped 1 cuts (too short for its label sequence)" in log
    assert "batches skipped so far (non-finite loss): 1" in log
    audio_failures = [uid for uid in ("bad-truncated", "bad-zero-length") if f"skipping {uid}" in feats.stderr]
    assert audio_failures == ["bad-truncated", "bad-zero-length"]
    assert (tmp_path / "exp/checkpoints/epoch-1.pt").exists()  # trained to the end


def test_too_many_bad_batches_in_a_row_stop_with_a_clear_message(tiny_corpus, lang, tmp_path):
    cuts = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz").sort_by_duration().subset(first=6)
    victim = next(iter(cuts))  # the shortest: its NaN copies come first in SortaGrad's order
    bad = [nan_features_cut(victim, f"nan-{i}", tmp_path / f"nan{i}") for i in range(3)]
    train = tmp_path / "train.jsonl.gz"
    CutSet.from_cuts([*bad, *cuts]).to_file(train)
    config = write_config(tmp_path / "conf.yaml", max_cuts=1, max_bad_batches=2, check_largest_batch=False)
    out = subprocess.run([DS2, *train_args(tiny_corpus, lang, tmp_path / "exp", config, train)],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode != 0
    assert "3 batches in a row were skipped (the last: non-finite loss)" in out.stderr
    assert "nan-0" in out.stderr and "nan-2" in out.stderr


def test_shar_shards_feed_each_rank_its_own(tiny_corpus, lang, tmp_path):
    shar = tmp_path / "shar"
    run_ds2(["shar", str(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz"), str(shar), "--shard-size", "10"])
    assert len(list(shar.glob("cuts.*.jsonl.gz"))) == len(list(shar.glob("features.*.tar"))) == 4
    out = run_ds2(train_args(tiny_corpus, lang, tmp_path / "exp", write_config(tmp_path / "c.yaml", max_cuts=2),
                             train_cuts=shar), launcher=[TORCHRUN, "--standalone", "--nproc-per-node", "2", DS2])
    assert "rank 0 reads shards 0 2 of" in out.stderr
    assert (tmp_path / "exp/checkpoints/epoch-1.pt").exists()
