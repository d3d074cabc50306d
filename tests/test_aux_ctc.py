"""The auxiliary pinyin CTC head (model.aux_units: pinyin): its units (ds2/text/pinyin.py), the
targets AsrDataset adds, and the training loss (ds2/train/loss.py) computed by hand from the
model's outputs, on real espeak-ng Mandarin speech (the `tiny_zh_corpus` fixture)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lhotse import CutSet

from ds2.config import ExperimentConfig, TrainConfig, resolve_config
from ds2.data.dataset import AsrDataset
from ds2.model import DeepSpeech2, ModelConfig
from ds2.text import load_tokenizer
from ds2.text.pinyin import FINALS, INITIALS, OTHER, UNITS, encode_pinyin, pinyin_units, split_syllable
from ds2.text.tokenizer import BLANK
from ds2.train.loss import compute_loss, compute_training_loss


@pytest.mark.parametrize("text, units", [
    ("中", ["zh", "ong1"]),
    ("儿", ["er2"]),  # a final without an initial
    ("中国人", ["zh", "ong1", "g", "uo2", "r", "en2"]),
    ("一", ["y", "i1"]),
    ("一月", ["y", "i2", "y", "ue4"]),  # 一 before a fourth tone is read yí, as pypinyin writes it
    ("不是", ["b", "u2", "sh", "i4"]),  # so is 不
    ("绿", ["l", "v4"]),  # ü written v
    ("你好", ["n", "i3", "h", "ao3"]),
    ("的", ["d", "e5"]),  # the neutral tone is 5
    ("A", [OTHER]),
    ("我用ATM机", ["w", "o3", "y", "ong4", OTHER, OTHER, OTHER, "j", "i1"]),  # one <other> per letter
])
def test_pinyin_units_of_known_words(text, units):
    assert pinyin_units(text) == units
    ids = encode_pinyin(text)
    assert [UNITS[i] for i in ids] == units
    assert all(0 < i < len(UNITS) for i in ids)  # never the blank


def test_unit_inventory_is_fixed_and_covers_every_reading_pypinyin_has():
    """The blank first and <other> last, no unit twice; and every reading of every character
    pypinyin knows (heteronyms too) splits into an initial (or none) and a toned final that are
    units, which join back to the reading."""
    from pypinyin import Style, pinyin
    from pypinyin.constants import PINYIN_DICT

    assert UNITS[0] == BLANK and UNITS[-1] == OTHER and len(set(UNITS)) == len(UNITS)
    assert len(UNITS) == 1 + 23 + 38 * 5 + 1 == 215
    assert len(INITIALS) == 23 and len(FINALS) == 38
    finals_seen, readings = set(), 0
    for code in PINYIN_DICT:
        for reading in pinyin(chr(code), style=Style.TONE3, heteronym=True, neutral_tone_with_five=True,
                              v_to_u=False)[0]:
            units = split_syllable(reading)
            assert units != (OTHER,), (chr(code), reading)
            assert "".join(units) == reading and all(u in UNITS for u in units), (reading, units)
            assert len(units) == 1 or units[0] in INITIALS
            finals_seen.add(units[-1][:-1])
            readings += 1
    assert readings > 40000
    assert finals_seen == set(FINALS)  # no final in the inventory is dead weight
    for bad in ("", "5", "zh", "zhong", "zhong6", "xyz1", "hello"):
        assert split_syllable(bad) == (OTHER,), bad


def _batch(cuts: CutSet, lang) -> dict:
    return AsrDataset(load_tokenizer(lang), aux_encode=encode_pinyin)[cuts]


def test_dataset_adds_the_pinyin_of_each_transcript(tiny_zh_corpus):
    cuts = CutSet.from_file(tiny_zh_corpus / "fbank/synth_cuts_train.jsonl.gz").subset(first=5)
    tok = load_tokenizer(tiny_zh_corpus / "lang")
    batch = AsrDataset(tok, aux_encode=encode_pinyin)[cuts]
    plain = AsrDataset(tok)[cuts]
    assert "aux_targets" not in plain and "aux_target_lens" not in plain
    for key in ("features", "feature_lens", "targets", "target_lens"):
        assert torch.equal(batch[key], plain[key]), key
    expected = [encode_pinyin(t) for t in batch["texts"]]
    assert batch["aux_target_lens"].tolist() == [len(e) for e in expected]
    assert batch["aux_targets"].tolist() == [i for e in expected for i in e]
    # the transcripts are Hanzi: two units for most syllables, never <other>
    assert all(len(e) > len(t) for e, t in zip(expected, batch["texts"]))
    assert UNITS.index(OTHER) not in batch["aux_targets"].tolist()


@pytest.fixture(scope="module")
def zh_batch_and_model(tiny_zh_corpus):
    cuts = CutSet.from_file(tiny_zh_corpus / "fbank/synth_cuts_train.jsonl.gz").subset(first=4)
    batch = _batch(cuts, tiny_zh_corpus / "lang")
    stats = torch.load(tiny_zh_corpus / "fbank/synth_stats_train.pt", weights_only=True)
    torch.manual_seed(0)
    cfg = ModelConfig(conv_channels=[4], conv_kernels=[[5, 11]], conv_strides=[[2, 4]], rnn_layers=3, rnn_hidden=16,
                      feature_norm="global", aux_units="pinyin", aux_layer=2)
    model = DeepSpeech2(cfg, 80, load_tokenizer(tiny_zh_corpus / "lang").vocab_size)
    model.set_normalization(stats["mean"], stats["std"])
    return batch, model


@pytest.mark.parametrize("aux_weight", [0.5, 0.3])
def test_training_loss_is_the_token_ctc_plus_the_weighted_aux_ctc(zh_batch_and_model, aux_weight):
    batch, model = zh_batch_and_model
    model.train()
    cpu = torch.device("cpu")
    loss, token_loss, tokens = compute_training_loss(model, batch, cpu, "float32", aux_weight)
    ctc, ref_tokens, _, _ = compute_loss(model, batch, cpu, "float32")
    with torch.no_grad():
        _, out_lens, aux = model(batch["features"], batch["feature_lens"], aux=True)
    aux_ctc = F.ctc_loss(aux.transpose(0, 1), batch["aux_targets"], out_lens, batch["aux_target_lens"], blank=0,
                         reduction="sum", zero_infinity=True)
    assert torch.isfinite(aux_ctc) and aux_ctc > 0  # every utterance is long enough for its units
    assert tokens == ref_tokens == int(batch["target_lens"].sum())
    assert token_loss == pytest.approx(ctc.item(), rel=1e-6)
    assert loss.item() == pytest.approx(ctc.item() + aux_weight * aux_ctc.item(), rel=1e-6)
    # the gradient reaches the auxiliary head, and through it the recurrent layers below it
    model.zero_grad()
    loss.backward()
    assert model.aux_head.weight.grad is not None and model.aux_head.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_training_loss_without_aux_weight_or_targets_is_the_token_loss(zh_batch_and_model):
    batch, model = zh_batch_and_model
    model.train()
    cpu = torch.device("cpu")
    ctc = compute_loss(model, batch, cpu, "float32")[0]
    no_targets = {k: v for k, v in batch.items() if not k.startswith("aux_")}
    for b, weight in ((batch, 0.0), (no_targets, 0.5)):
        model.zero_grad()
        loss, token_loss, tokens = compute_training_loss(model, b, cpu, "float32", weight)
        assert loss.item() == pytest.approx(ctc.item(), rel=1e-6) and token_loss == pytest.approx(ctc.item(), rel=1e-6)
        loss.backward()
        assert model.aux_head.weight.grad is None  # the head was not in the graph
    model.zero_grad()


def test_aux_options_are_checked():
    cfg = resolve_config(None, ["model.aux_units=pinyin", "model.rnn_layers=3", "model.aux_layer=3"])
    assert (cfg.model.aux_units, cfg.model.aux_layer, cfg.train.aux_weight) == ("pinyin", 3, 0.5)
    assert TrainConfig().aux_weight == 0.5 and ModelConfig().aux_units == ""
    with pytest.raises(ValueError, match="needs train.aux_weight > 0"):
        ExperimentConfig(model=ModelConfig(aux_units="pinyin"), train=TrainConfig(aux_weight=0.0)).validate()
    ExperimentConfig(train=TrainConfig(aux_weight=0.0)).validate()  # no head: the weight is not used
