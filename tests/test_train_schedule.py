"""The order and the pace of training: the LR schedule (linear warm-up, cosine decay to a floor)
and SortaGrad (epoch 0 from the shortest cut to the longest, later epochs shuffled), on the real
sampler of the tiny espeak-ng corpus and on the Trainer that `ds2 train` builds."""

from __future__ import annotations

import math

import pytest
import torch
from lhotse import CutSet

from ds2.config import resolve_config
from ds2.data.sampler import make_train_sampler
from ds2.data.train_cuts import TrainCuts
from ds2.text import load_tokenizer
from ds2.train.schedule import lr_lambda, lr_scheduler
from ds2.train.trainer import TrainData, Trainer


def test_warmup_is_linear_to_the_peak():
    f = lr_lambda(warmup=4, total=20, final_ratio=0.1)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(4) == pytest.approx(1.0)  # the cosine starts at the peak


def test_cosine_decays_to_final_ratio_at_the_last_step_and_stays():
    f = lr_lambda(warmup=4, total=20, final_ratio=0.1)
    assert f(12) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert f(8) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert f(20) == pytest.approx(0.1)
    assert f(100) == pytest.approx(0.1)
    decay = [f(s) for s in range(4, 21)]
    assert all(a > b for a, b in zip(decay, decay[1:]))  # strictly down, no plateau


def test_no_warmup_starts_at_the_peak():
    f = lr_lambda(warmup=0, total=10, final_ratio=0.0)
    assert f(0) == pytest.approx(1.0) and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)


def test_the_optimizer_follows_the_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=2e-3)
    sched = lr_scheduler(opt, warmup=3, total=10, final_ratio=0.05)
    lrs = []
    for _ in range(10):  # the LR each of the run's 10 optimizer steps uses
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([2e-3 / 3, 2e-3 * 2 / 3, 2e-3])
    assert max(lrs) == pytest.approx(2e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.05)  # after the last step: the floor


def batch_durations(sampler) -> list[list[float]]:
    return [[c.duration for c in batch] for batch in sampler]


def is_sorted(durations: list[list[float]]) -> bool:
    flat = [d for batch in durations for d in batch]
    return all(a <= b for a, b in zip(flat, flat[1:]))


def test_sortagrad_first_epoch_by_increasing_duration_then_shuffled(tiny_corpus):
    cuts = TrainCuts.from_cuts(CutSet.from_jsonl_lazy(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz"))
    assert not is_sorted([[c.duration for c in cuts.in_order()]])  # the file itself is not in duration order
    first = batch_durations(make_train_sampler(cuts, max_duration=30.0, epoch=0, sortagrad=True, num_buckets=4))
    assert len(first) > 3 and is_sorted(first)
    assert sum(len(b) for b in first) == len(cuts)
    for epoch in (1, 2):
        later = batch_durations(make_train_sampler(cuts, max_duration=30.0, epoch=epoch, sortagrad=True,
                                                   num_buckets=4))
        assert not is_sorted(later), epoch
        assert sorted(d for b in later for d in b) == sorted(cuts.durations.tolist())
    assert not is_sorted(batch_durations(make_train_sampler(cuts, 30.0, epoch=0, sortagrad=False, num_buckets=4)))


def test_the_trainer_walks_epoch_0_sorted_and_epoch_1_shuffled(tiny_corpus, lang, tmp_path):
    cfg = resolve_config(None, ["model.rnn_layers=1", "model.rnn_hidden=16", "model.conv_channels=[4]",
                                "model.conv_kernels=[[5, 11]]", "model.conv_strides=[[2, 2]]",
                                "train.max_duration=30", "train.num_buckets=4", "train.spec_augment=false"])
    data = TrainData(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz", tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz",
                     tiny_corpus / "fbank/synth_stats_train.pt")
    trainer = Trainer(cfg, data, load_tokenizer(lang), tmp_path / "exp")
    assert is_sorted(batch_durations(trainer.epoch_sampler()))
    trainer.epoch = 1
    assert not is_sorted(batch_durations(trainer.epoch_sampler()))
    # the same epoch gives the same batches (what resuming mid-epoch relies on)
    assert batch_durations(trainer.epoch_sampler()) == batch_durations(trainer.epoch_sampler())
