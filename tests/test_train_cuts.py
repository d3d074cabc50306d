"""ds2.data.train_cuts: training cuts read once, served in SortaGrad's and shuffled orders,
and never held in memory as Lhotse `Cut` objects."""

from __future__ import annotations

import gc

import numpy as np
from lhotse import CutSet
from lhotse.cut import MonoCut

from ds2.data.filter import TrainableCuts
from ds2.data.train_cuts import TrainCuts
from ds2.model import DeepSpeech2, ModelConfig
from ds2.text import CharTokenizer


def live_cuts() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, MonoCut))


def test_the_cuts_come_back_as_written_in_every_order(tiny_corpus):
    path = tiny_corpus / "fbank/synth_cuts_train.jsonl.gz"
    eager = CutSet.from_file(path).to_eager()
    keep_ids = {c.id for i, c in enumerate(eager) if i % 3}  # drop every third cut
    cuts = TrainCuts.from_cuts(CutSet.from_jsonl_lazy(path), lambda c: c.id in keep_ids)
    expected = [c for c in eager if c.id in keep_ids]
    assert len(cuts) == len(expected) and abs(cuts.total_duration - sum(c.duration for c in expected)) < 1e-6
    assert [c.to_dict() for c in cuts.in_order()] == [c.to_dict() for c in expected]
    by_duration = [c.duration for c in cuts.sorted_by_duration()]
    assert by_duration == sorted(c.duration for c in expected)
    longest = [c.duration for c in cuts.longest()]
    assert longest == sorted(by_duration, reverse=True)
    # a permutation that follows from the seed alone; two walks of one order may interleave
    a, b = [c.id for c in cuts.shuffled(5)], [c.id for c in cuts.shuffled(5)]
    assert a == b and sorted(a) == sorted(keep_ids) and a != [c.id for c in cuts.shuffled(6)]
    walk1, walk2 = iter(cuts.shuffled(5)), iter(cuts.shuffled(5))
    assert [(next(walk1).id, next(walk2).id) for _ in range(len(a))] == list(zip(a, a))
    # the features the cuts point to load as they did
    first = next(iter(cuts.in_order()))
    np.testing.assert_array_equal(first.load_features(), expected[0].load_features())


def test_no_cut_object_is_kept_in_memory(tiny_corpus):
    path = tiny_corpus / "fbank/synth_cuts_train.jsonl.gz"
    tok = CharTokenizer()
    model = DeepSpeech2(ModelConfig(rnn_layers=1, rnn_hidden=8, conv_channels=[2], conv_kernels=[[11, 41]],
                                    conv_strides=[[2, 2]]), 80, tok.vocab_size)
    before = live_cuts()
    check = TrainableCuts(tok, model, "train")
    cuts = TrainCuts.from_cuts(CutSet.from_jsonl_lazy(path), check.keep)
    assert check.kept == len(cuts) > 0
    assert live_cuts() == before  # only offsets and durations stay
    in_memory = TrainCuts.from_cuts(CutSet.from_jsonl_lazy(path), check.keep, on_disk=False)  # Shar's way
    assert live_cuts() == before + len(in_memory)
