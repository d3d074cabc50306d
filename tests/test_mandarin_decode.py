"""Mandarin decoding: char-zh tokens with <unk>, a character n-gram scored at every character by the
prefix beam search (C++ equal to the Python reference), HLG over characters joined without
spaces, n-best rescoring and tuning by CER, and scoring on characters without spaces.

Log-probs are built by hand so the right answer is known. The homophones are real ones:
他/她/它 (tā) and 在/再 (zài) sound the same, so only the LM can choose between them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import test_lm_decode as lm_decode
from prefix_beam_reference import ReferencePrefixBeamSearch
from test_lm_decode import peaky

from ds2.decode.beam import BeamOptions, PrefixBeamSearch
from ds2.decode.graph import GraphDecoder
from ds2.decode.methods import DecodeOptions, NbestRescorer, sentence_log_prob
from ds2.decode.runner import LogProbs, decode_dir, write_result
from ds2.decode.tune import tune
from ds2.homophones import homophone_counts
from ds2.lm.hlg import build_graphs
from ds2.report import write_results
from ds2.lm.ngram import arpa_vocabulary, load_lm, perplexity, train_ngram
from ds2.score import score, write_decode_dir
from ds2.text import CharTokenizer, load_tokenizer

LM_TEXT = ["他在学校学习中文", "她在家里看书", "我们在学校看书", "他再也不去学校了", "它在家里睡觉",
           "我们学习中文", "她在学校学习", "他在家里学习中文"] * 3
TOK = CharTokenizer.from_texts(LM_TEXT + ["再见", "书店"], unk=True)


def spelled(frames: list[dict[str, float]]) -> np.ndarray:
    return lm_decode.spelled(frames, tok=TOK)


def homophone(a: str, b: str, pa: float = 0.55) -> list[dict[str, float]]:
    """One syllable the acoustics give to `a` (pa) or its homophone `b` (the rest)."""
    return [{a: pa, b: 0.97 - pa}, {"": 0.98}]


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("zh_lm")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n", encoding="utf-8")
    arpa, binary = train_ngram(d / "text.txt", d / "lm", order=3, unit="char")
    big = train_ngram(d / "text.txt", d / "lm", order=4, unit="char")[1]
    return arpa, binary, big


def test_char_zh_tokens_map_unseen_characters_to_unk(tmp_path):
    assert TOK.symbols[:2] == ["<blk>", "<unk>"] and not TOK.word_boundaries
    ids = TOK.encode("他在火星")  # 火 and 星 never occur in the training text
    assert ids[2:] == [1, 1] and TOK.decode(ids) == "他在\u2047\u2047"
    assert TOK.can_encode("他在学校") and not TOK.can_encode("他在火星")
    TOK.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("他在火星") == ids


def test_character_lm_has_characters_as_words(char_lm):
    arpa, binary, _ = char_lm
    vocabulary = arpa_vocabulary(arpa)
    assert set(vocabulary) == {c for s in LM_TEXT for c in s}
    model = load_lm(binary)
    assert perplexity(model, ["他在学校"], "char") < perplexity(model, ["校学在他"], "char")
    # the rescoring pass scores the characters, not the unsegmented sentence as one unknown word
    assert sentence_log_prob(model, "他在学校", "char") > sentence_log_prob(model, "他再学校", "char")
    assert sentence_log_prob(model, "他在学校", "char") == pytest.approx(
        model.score("他 在 学 校", bos=True, eos=True) * math.log(10))


def test_beam_search_scores_the_character_lm_at_every_character(char_lm):
    _, binary, _ = char_lm
    # 在 and 再 sound the same (zài); the acoustics lean to the wrong one, the LM knows 他在学校
    frames = peaky("他") + homophone("再", "在") + peaky("学校")
    log_probs = spelled(frames)
    assert PrefixBeamSearch(TOK, None).decode(log_probs) == "他再学校"
    with_lm = PrefixBeamSearch(TOK, load_lm(binary), BeamOptions(alpha=0.8, beta=0.5))
    assert with_lm.decode(log_probs) == "他在学校"
    nbest = with_lm.nbest(log_probs, 4)
    assert all(" " not in text for text, _, _ in nbest)
    assert nbest[0][2] == 4  # the LM word count of a character LM: its characters


def test_a_word_lm_is_refused_for_tokens_without_spaces(tmp_path):
    (tmp_path / "words.txt").write_text("他 在 学校\n我们 在 学校 看书\n", encoding="utf-8")
    _, binary = train_ngram(tmp_path / "words.txt", tmp_path / "lm", order=2)
    with pytest.raises(ValueError, match="needs a character LM"):
        PrefixBeamSearch(TOK, load_lm(binary))


def noisy(text: str, rng: np.random.Generator) -> np.ndarray:
    return lm_decode.noisy(text, rng, tok=TOK)


@pytest.mark.parametrize("with_lm", [False, True])
def test_cpp_beam_search_equals_the_python_reference_on_mandarin(char_lm, with_lm):
    model = load_lm(char_lm[1]) if with_lm else None
    opts = BeamOptions(beam=12, alpha=0.6, beta=1.5, token_min_logp=-4.0)
    cpp = PrefixBeamSearch(TOK, model, opts)
    ref = ReferencePrefixBeamSearch(TOK, model, opts)
    rng = np.random.default_rng(0)
    # known sentences, homophone swaps, a character the LM never saw (见), and <unk>'s column
    for text in ["他在学校学习中文", "她再家里看书", "我们学习再见", "书店在家里"] * 2:
        log_probs = noisy(text, rng)
        a, b = cpp.nbest(log_probs, 8), ref.nbest(log_probs, 8)
        assert [h[0] for h in a] == [h[0] for h in b] and len(a) > 1
        assert np.allclose([h[1] for h in a], [h[1] for h in b], atol=1e-6)
        assert [h[2] for h in a] == [h[2] for h in b] == [len(h[0]) for h in a]


@pytest.mark.parametrize("compact_h", [False, True])  # the topologies of few tokens and of many
def test_hlg_decodes_characters_joined_without_spaces(char_lm, tmp_path, compact_h):
    arpa, _, _ = char_lm
    lang = tmp_path / "lang"
    TOK.save(lang)
    paths = build_graphs(lang, arpa, TOK, compact_h=compact_h)
    # L maps each character to itself: the lexicon spells every LM character with its one token
    lexicon = dict(line.split(" ", 1) for line in (lang / "lexicon.txt").read_text(encoding="utf-8").splitlines())
    assert lexicon and all(word == spelling for word, spelling in lexicon.items())
    log_probs = spelled(peaky("他") + homophone("再", "在") + peaky("学校"))
    assert GraphDecoder(paths["H"], TOK).decode(log_probs) == "他再学校"
    hlg = GraphDecoder(paths["HLG"], TOK, lang / "words.txt", lm_scale=1.0)
    assert hlg.decode(log_probs) == "他在学校"
    # a repeated character needs a blank between its two frames in both topologies
    assert GraphDecoder(paths["H"], TOK).decode(spelled(peaky("学学"))) == "学学"
    assert GraphDecoder(paths["H"], TOK).decode(spelled([{"学": 0.98}] * 3 + [{"": 0.98}])) == "学"


def test_nbest_rescoring_and_tuning_rank_by_cer(char_lm):
    _, binary, big = char_lm
    log_probs = [spelled(peaky("他") + homophone("再", "在", 0.7) + peaky("学校")),
                 spelled(peaky("她") + homophone("再", "在", 0.7) + peaky("家里看书"))]
    refs = ["他在学校", "她在家里看书"]
    # a first pass without LM weight (nor recombination, which merges 他在学 into 他再学 once the
    # 3-gram's states agree): the 4-gram of the rescoring pass chooses among its n best
    search = PrefixBeamSearch(TOK, load_lm(binary), BeamOptions(alpha=0.0, beta=0.0, recombine=False))
    rescorer = NbestRescorer(search, load_lm(big), alpha=1.0, beta=0.0, n=8)
    assert [rescorer.decode(lp) for lp in log_probs] == refs
    lp = LogProbs(["a", "b"], refs, [1.0, 1.0], log_probs, TOK, "ckpt.pt")
    params, table = tune(lp, DecodeOptions(method="beam", lm=str(binary)), grid={"alpha": [0.0, 1.0], "beta": [0.0]})
    assert params["alpha"] == 1.0 and all(row["primary"] == "CER" for row in table)
    assert min(row["cer"] for row in table) == 0.0


def test_cer_counts_characters_without_spaces_and_unseen_characters_as_errors(tmp_path):
    refs = {"u1": "他在学校", "u2": "我们在火星"}  # 火星: characters training never saw
    hyps = {"u1": "他 再 学校", "u2": "我们在\u2047星"}
    wer, cer = score(refs, hyps)
    assert (cer.errors, cer.ref) == (2, 9)  # 再 for 在, ⁇ for 火; the spaces of u1's hypothesis count for nothing
    write_decode_dir(tmp_path, refs, hyps, unit="char")
    text = (tmp_path / "wer.txt").read_text()
    assert text.splitlines()[0].startswith("%CER 22.22 [ 2 / 9")
    assert "(在->再)" in (tmp_path / "errs.txt").read_text(encoding="utf-8")


def test_homophones_among_substitutions():
    refs = {"u1": "他在学校", "u2": "我们看书"}
    hyps = {"u1": "她再学校", "u2": "我们看树"}  # 他/她 tā, 在/再 zài: homophones; 书 shū / 树 shù: not in tone
    assert homophone_counts(refs, hyps) == {"substitutions": 3, "same_tone": 2, "same_syllable": 3}


def test_results_md_of_a_mandarin_recipe_leads_with_cer(tmp_path):
    refs = ["他在学校", "她在家里看书"]
    lp = LogProbs(["u1", "u2"], refs, [1.0, 1.0], [spelled(peaky(r)) for r in refs], TOK, "exp/ds2/best.pt")
    exp = tmp_path / "exp" / "ds2"
    for set_name, hyps in (("dev", {"u1": "他再学校", "u2": "她在家里看书"}), ("test", {"u1": "它在学校", "u2": "她在家"})):
        write_result(decode_dir(exp, set_name, "greedy"), set_name, lp, hyps, DecodeOptions(), 0.01)
    text = write_results(tmp_path)
    assert "## Character and sentence error rates" in text and "## Word and character" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| ds2 | greedy |"))
    header = next(ln for ln in text.splitlines() if ln.startswith("| experiment | method | dev"))
    assert header.split("|")[3:7] == [" dev %CER ", " dev %SER ", " test %CER ", " test %SER "]
    # dev: 1 of 10 characters wrong, 1 of 2 sentences; test: 1 substitution and 3 deletions of 10
    assert [c.strip() for c in row.split("|")[3:7]] == ["10.00", "50.00", "40.00", "100.00"]
    assert "ds2 greedy test: 1 substitutions: 100.0% homophones" in text
    result = json.loads((decode_dir(exp, "test", "greedy") / "result.json").read_text())
    assert result["primary"] == "CER" and result["homophones"]["same_tone"] == 1


# -- a word LM over char-zh tokens: L spells each word with its characters ------------------------

WORD_TEXT = ["他 在 学校 学习 中文", "她 在 家里 看书", "我们 在 学校 看书", "我们 在 火星 看书",  # 火星: unknown to TOK
             "他 再也 不 去 学校 了"]


@pytest.fixture(scope="module")
def word_arpa(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("zh_word_lm")
    (d / "words.txt").write_text("\n".join(WORD_TEXT) + "\n", encoding="utf-8")
    return train_ngram(d / "words.txt", d / "lm", order=3, unit="word")[0]


def test_a_word_lm_graph_spells_each_word_with_its_characters(word_arpa, tmp_path):
    vocabulary = {w for line in WORD_TEXT for w in line.split()}
    assert set(arpa_vocabulary(word_arpa)) - {"<s>", "</s>", "<unk>"} == vocabulary  # words, not characters
    lang = tmp_path / "lang_word"
    TOK.save(lang)
    paths = build_graphs(lang, word_arpa, TOK)
    lexicon = dict(line.split(" ", 1) for line in (lang / "lexicon.txt").read_text(encoding="utf-8").splitlines())
    # every word the tokens can write, spelled with exactly its characters, space-separated; 火星 left out
    assert lexicon == {w: " ".join(w) for w in vocabulary - {"火星"}}
    assert (lang / "unspelled.txt").read_text(encoding="utf-8") == "火星\n"
    assert not TOK.can_encode("火星") and all(TOK.can_encode(w) for w in lexicon)
    # HLG reads characters and writes the words' characters without spaces
    hlg = GraphDecoder(paths["HLG"], TOK, lang / "words.txt", lm_scale=1.0)
    assert hlg.decode(spelled(peaky("我们在学校看书"))) == "我们在学校看书"
    assert hlg.decode(spelled(peaky("他") + homophone("再", "在") + peaky("学校学习中文"))) == "他在学校学习中文"


def ds2_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("ds2")), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_lm_graph_out_dir_writes_a_second_lang_dir_and_counts_the_left_out_words(word_arpa, tmp_path):
    lang, other = tmp_path / "lang_char", tmp_path / "lang_word"
    TOK.save(lang)
    proc = ds2_cli("lm", "graph", lang, word_arpa, "--out-dir", other)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{other / 'unspelled.txt'}: 1 words of {word_arpa} the tokens cannot spell, left out of L" in proc.stdout
    # OTHER is a lang dir of its own: the tokens' copy and the graphs; LANG_DIR is left as it was
    assert (other / "tokens.txt").read_text() == (lang / "tokens.txt").read_text()
    assert load_tokenizer(other).symbols == TOK.symbols
    assert all((other / f"{g}.fst").is_file() for g in ("H", "L", "G", "HLG"))
    assert not (lang / "HLG.fst").exists() and not (lang / "lexicon.txt").exists()
    assert (other / "unspelled.txt").read_text(encoding="utf-8") == "火星\n"
    # an LM none of whose words the tokens spell: one line, no graph
    (tmp_path / "mars.txt").write_text("火星 火星\n火星\n", encoding="utf-8")
    mars = train_ngram(tmp_path / "mars.txt", tmp_path / "lm_mars", order=2, unit="word")[0]
    bad = ds2_cli("lm", "graph", lang, mars, "--out-dir", tmp_path / "lang_mars")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        f"Error: none of the 1 words of {mars} can be spelled with the tokens of {tmp_path / 'lang_mars'} (e.g. '火星')")
    assert not (tmp_path / "lang_mars" / "HLG.fst").exists()
