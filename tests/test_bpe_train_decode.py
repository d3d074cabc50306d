"""BPE units end to end: `ds2 tokens --type bpe`, a tiny `ds2 train` with them, and `ds2 decode`
with greedy search and with the prefix beam search and a KenLM word 3-gram from `ds2 lm train`.
The outputs must be text, not pieces: words the BPE model spells, no `▁` word-boundary marks,
no `<unk>`, and whitespace normalised; the logged dev CER is greedy decoding's.

All real: espeak-ng audio (the session's tiny corpus), sentencepiece, KenLM, the `ds2` command."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ds2.checkpoint import load_checkpoint
from ds2.decode.greedy import greedy_decode
from ds2.score import parse_wer_file
from ds2.text import BpeTokenizer, load_tokenizer

DS2 = str(Path(sys.executable).with_name("ds2"))
# oneDNN limited to AVX2: bfloat16 is emulated, so dtype auto is float32 in training and decoding alike
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
TINY_MODEL = {"conv_channels": [4], "conv_kernels": [[5, 11]], "conv_strides": [[2, 4]], "rnn_layers": 1,
              "rnn_hidden": 32, "feature_norm": "utterance"}
TRAIN = {"epochs": 2, "max_duration": 1000, "max_cuts": 4, "lr": 5e-3, "warmup_steps": 2, "spec_augment": False,
         "num_workers": 0, "log_interval": 1, "save_every_steps": 0, "seed": 7, "threads": 1,
         "check_largest_batch": False}
PIECE_MARKS = ("\u2581", "\u2047", "<unk>", "<blk>")  # ▁, sentencepiece's ⁇ for <unk>, the special pieces


def ds2(args: list[str]) -> subprocess.CompletedProcess:
    out = subprocess.run([DS2, *args], capture_output=True, text=True, env=ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def bpe_lang(tiny_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """A lang dir with a 100-piece BPE model, and the text it was trained on: part of the corpus's
    LM text (which holds no dev sentence)."""
    d = tmp_path_factory.mktemp("bpe")
    text = d / "text.txt"
    lines = (tiny_corpus / "manifests/synth_lm_text.txt").read_text().splitlines()[:3000]
    text.write_text("\n".join(lines) + "\n")
    ds2(["tokens", str(d / "lang_bpe"), "--type", "bpe", "--text", str(text), "--vocab-size", "100"])
    return d / "lang_bpe", text


@pytest.fixture(scope="module")
def bpe_run(tiny_corpus, bpe_lang, tmp_path_factory):
    """(BPE lang dir, KenLM word 3-gram binary of the same text, experiment trained 2 epochs with them)."""
    lang, text = bpe_lang
    d = tmp_path_factory.mktemp("bpe_run")
    ds2(["lm", "train", str(text), str(d / "lm"), "--order", "3"])
    config = d / "conf.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": TRAIN}))
    ds2(["train", "--exp-dir", str(d / "exp"), "--train-cuts", str(tiny_corpus / "fbank/synth_cuts_train.jsonl.gz"),
         "--dev-cuts", str(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz"),
         "--stats", str(tiny_corpus / "fbank/synth_stats_train.pt"), "--lang-dir", str(lang),
         "--config", str(config)])
    return lang, d / "lm/lm_3gram.bin", d / "exp"


def hypotheses(decode_dir: Path) -> list[list[str]]:
    return [ast.literal_eval(line.split("hyp=", 1)[1]) for line in (decode_dir / "recogs.txt").read_text().splitlines()
            if "\thyp=" in line]


def assert_words_of(tokenizer: BpeTokenizer, hyps: list[list[str]]) -> None:
    """Every hypothesis word is text the BPE model spells (no piece marks, no unknown piece)."""
    assert any(hyps), "every hypothesis is empty"
    for words in hyps:
        for word in words:
            assert not any(mark in word for mark in PIECE_MARKS), words
            tokenizer.encode(word)  # raises ValueError for a word with a piece outside the vocabulary


def test_bpe_training_checkpoints_the_bpe_tokenizer(bpe_run):
    lang, _, exp = bpe_run
    ckpt = load_checkpoint(exp / "checkpoints/last.pt")
    assert ckpt["tokenizer"] == load_tokenizer(lang).to_dict() and ckpt["tokenizer"]["type"] == "bpe"
    epochs = json.loads((exp / "log/history.json").read_text())["epochs"]
    assert len(epochs) == 2 and all(math.isfinite(e["train_loss"]) and math.isfinite(e["dev_loss"]) for e in epochs)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_bpe_decoding_gives_words_not_pieces(tiny_corpus, bpe_run, method):
    lang, lm, exp = bpe_run
    dev = tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz"
    extra = ["--lm", str(lm)] if method == "beam" else []
    ds2(["decode", str(exp), "--checkpoint", str(exp / "checkpoints/last.pt"), "--cuts", f"dev={dev}",
         "--method", method, "--num-jobs", "1", *extra])
    out = exp / f"decode_dev_{method}"
    rates = parse_wer_file(out / "wer.txt")
    assert set(rates) == {"WER", "CER"} and rates["CER"].ref > 0
    assert json.loads((out / "result.json").read_text())["method"] == method
    assert_words_of(load_tokenizer(lang), hypotheses(out))
    if method == "greedy":  # the dev CER logged for the last epoch is this one
        last = json.loads((exp / "log/history.json").read_text())["epochs"][-1]
        assert (last["dev_char_errors"], last["dev_chars"]) == (rates["CER"].errors, rates["CER"].ref)


def test_greedy_normalises_the_spaces_bpe_pieces_leave(bpe_lang):
    tok = load_tokenizer(bpe_lang[0])
    ids = [tok.symbols.index(p) for p in ("\u2581", "\u2581", "\u2581a", "s", "\u2581", "\u2581", "\u2581a", "\u2581")]
    assert tok.decode(ids) == "as   a "  # what sentencepiece leaves of lone word-boundary pieces
    frames = []  # a peaky CTC output spelling `ids`, a blank after each piece
    for i in ids:
        frames += [i, tok.blank_id]
    log_probs = torch.full((1, len(frames), tok.vocab_size), -20.0)
    log_probs[0, torch.arange(len(frames)), torch.tensor(frames)] = 0.0
    text = greedy_decode(log_probs, torch.tensor([len(frames)]), tok)[0]
    assert text == " ".join(text.split()) == "as a"
