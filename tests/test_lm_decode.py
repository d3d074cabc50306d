"""KenLM training, H/L/G/HLG graphs, prefix beam search with an LM, and alpha/beta tuning.

Log-probs are built by hand so the right answer is known: a "peaky" CTC output spells a
text frame by frame, with ties or near-ties where a test needs the LM to decide.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from prefix_beam_reference import ReferencePrefixBeamSearch

from ds2.decode.beam import BeamOptions, PrefixBeamSearch
from ds2.decode.graph import GraphDecoder
from ds2.decode.methods import DecodeOptions, DecoderPool, NbestRescorer, decode_many, method, rescore_nbest, \
    sentence_log_prob
from ds2.decode.runner import LogProbs
from ds2.decode.tune import tune
from ds2.lm.hlg import add_disambig, build_graphs
from ds2.lm.ngram import arpa_vocabulary, import_arpa, load_lm, perplexity, train_ngram
from ds2.text import BpeTokenizer, CharTokenizer

TOK = CharTokenizer()
LM_TEXT = [
    "the cat sat there",
    "there is a cat",
    "the dog sat there",
    "a cat is there",
    "the cat is on the mat",
    "there the dog is",
    "is the cat there",
] * 3


def spelled(frames: list[dict[str, float]], floor: float = 1e-4, tok=TOK) -> np.ndarray:
    """(T, V) log-probs: each frame a {char: prob} dict ('' is the blank); the rest share `floor`."""
    out = np.full((len(frames), tok.vocab_size), math.log(floor), dtype=np.float32)
    for t, frame in enumerate(frames):
        for ch, p in frame.items():
            out[t, 0 if ch == "" else tok.encode(ch)[0]] = math.log(p)
    return out


def peaky(text: str) -> list[dict[str, float]]:
    """Frames that spell `text` with a blank after every character."""
    frames = []
    for ch in text:
        frames += [{ch: 0.98}, {"": 0.98}]
    return frames


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n")
    arpa, binary = train_ngram(d / "text.txt", d / "lm", order=3)
    return arpa, binary


@pytest.fixture(scope="module")
def big_lm(tmp_path_factory):
    """A 4-gram of the same text: the larger LM of nbest-rescore."""
    d = tmp_path_factory.mktemp("big_lm")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n")
    return train_ngram(d / "text.txt", d / "lm", order=4)[1]


def test_kenlm_trains_a_real_lm(lm):
    arpa, binary = lm
    text = arpa.read_text()
    assert "\\3-grams:" in text
    assert set(arpa_vocabulary(arpa)) == {w for s in LM_TEXT for w in s.split()}
    model = load_lm(binary)
    assert perplexity(model, ["the cat sat there"]) < perplexity(model, ["there sat cat the"])


def test_add_disambig_marks_prefixes_only():
    lex, max_k = add_disambig({"a": (1,), "at": (1, 2), "cat": (3, 1, 2)})
    assert lex == {"a": (1, -1), "at": (1, 2), "cat": (3, 1, 2)}
    assert max_k == 1


def test_graphs_decode_known_log_probs(lm, tmp_path):
    arpa, _ = lm
    lang = tmp_path / "lang"
    TOK.save(lang)
    paths = build_graphs(lang, arpa, TOK)
    for name in ("H", "L", "G", "HLG"):
        assert paths[name].stat().st_size > 0
    log_probs = spelled(peaky("the cat sat there"))
    assert GraphDecoder(paths["HLG"], TOK, lang / "words.txt").decode(log_probs) == "the cat sat there"
    assert GraphDecoder(paths["H"], TOK).decode(log_probs) == "the cat sat there"
    # A misspelling the acoustics prefer: H keeps it, HLG can only output words of the LM.
    frames = peaky("the cat sat th") + [{"e": 0.4, "a": 0.6}, {"": 0.98}] + peaky("re")
    assert GraphDecoder(paths["H"], TOK).decode(spelled(frames)) == "the cat sat thare"
    assert GraphDecoder(paths["HLG"], TOK, lang / "words.txt").decode(spelled(frames)) == "the cat sat there"


def test_beam_search_prefers_the_lm_spelling(lm):
    _, binary = lm
    frames = peaky("the cat sat th") + [{"e": 0.45, "a": 0.55}, {"": 0.98}] + peaky("re")
    log_probs = spelled(frames)
    assert PrefixBeamSearch(TOK, None).decode(log_probs) == "the cat sat thare"  # acoustics alone
    with_lm = PrefixBeamSearch(TOK, load_lm(binary), BeamOptions(alpha=0.5, beta=1.0))
    assert with_lm.decode(log_probs) == "the cat sat there"


def test_beam_search_without_lm_matches_greedy_on_clear_input():
    log_probs = spelled(peaky("a cat is there"))
    assert PrefixBeamSearch(TOK, None).decode(log_probs) == "a cat is there"
    texts, _ = decode_many(DecodeOptions(), TOK, [log_probs])
    assert texts == ["a cat is there"]


def noisy(text: str, rng: np.random.Generator, tok=TOK) -> np.ndarray:
    """Softmax of random logits with the spelling of `text` boosted: many live prefixes per frame."""
    return noisy_tokens([tok.encode(ch)[0] for ch in text], tok.vocab_size, rng)


def noisy_tokens(ids: list[int], vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """`noisy` for a token sequence: each token boosted in one frame, the blank in the next."""
    target = np.zeros((2 * len(ids), vocab_size), dtype=np.float32)
    for t, i in enumerate(ids):
        target[2 * t, i] = 1.0
        target[2 * t + 1, 0] = 1.0
    logits = 4.0 * target + rng.normal(0.0, 1.2, target.shape).astype(np.float32)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def lms(lm, big_lm, tmp_path_factory):
    """The files the C++ search loads with its own KenLM, as the reference's `kenlm` module does:
    the 3-gram's probing binary and its ARPA, the 4-gram, and the 3-gram as a KenLM trie."""
    arpa, binary = lm
    trie = import_arpa(arpa, tmp_path_factory.mktemp("trie_lm"), 3, binary_type="trie")[1]
    return {"3-gram": binary, "3-gram ARPA": arpa, "4-gram": big_lm, "3-gram trie": trie}


def assert_same_nbest(cpp: PrefixBeamSearch, ref: ReferencePrefixBeamSearch, log_probs: np.ndarray):
    a, b = cpp.nbest(log_probs, 8), ref.nbest(log_probs, 8)
    assert [h[0] for h in a] == [h[0] for h in b] and len(a) > 1
    assert np.allclose([h[1] for h in a], [h[1] for h in b], atol=1e-6)
    assert [h[2] for h in a] == [h[2] for h in b]


@pytest.mark.parametrize("with_lm", [False, True, "3-gram ARPA", "4-gram", "3-gram trie"])
def test_cpp_beam_search_equals_the_python_reference(lm, lms, with_lm):
    model = load_lm(lms["3-gram"] if with_lm is True else lms[with_lm]) if with_lm else None
    opts = BeamOptions(beam=12, alpha=0.6, beta=1.5, token_min_logp=-4.0)
    cpp = PrefixBeamSearch(TOK, model, opts)
    ref = ReferencePrefixBeamSearch(TOK, model, opts)
    rng = np.random.default_rng(0)
    for text in ["the cat sat there", "a dog is on the mat", "thre cat iz ther", "xq zz"] * 2:
        assert_same_nbest(cpp, ref, noisy(text, rng))


def test_cpp_beam_search_equals_the_python_reference_with_bpe(lm):
    """BPE pieces write word boundaries of their own ('\u2581x' is ' x') and can spell one text in
    two ways, which the C++ search finds by text."""
    tok = BpeTokenizer.train(LM_TEXT, vocab_size=30)
    assert any(len(s.lstrip("\u2581")) > 1 for s in tok.symbols)  # pieces of several characters
    model = load_lm(lm[1])
    opts = BeamOptions(beam=12, alpha=0.6, beta=1.5, token_min_logp=-4.0)
    cpp, ref = PrefixBeamSearch(tok, model, opts), ReferencePrefixBeamSearch(tok, model, opts)
    rng = np.random.default_rng(0)
    for text in ["the cat sat there", "a dog is on the mat", "is the cat there"] * 2:
        assert_same_nbest(cpp, ref, noisy_tokens(tok.encode(text), tok.vocab_size, rng))


def test_searches_run_side_by_side_in_threads(lm):
    """The C++ search runs without the GIL: searches in two threads (one each) give what one
    search gives alone, and share one loaded model."""
    model = load_lm(lm[1])
    opts = BeamOptions(beam=12, alpha=0.6, beta=1.5, token_min_logp=-4.0)
    rng = np.random.default_rng(1)
    inputs = [noisy(text, rng) for text in ["the cat sat there", "a dog is on the mat", "thre cat iz ther"] * 4]
    alone = PrefixBeamSearch(TOK, model, opts)
    expected = [alone.nbest(x, 4) for x in inputs]
    searches = [PrefixBeamSearch(TOK, lm[1], opts) for _ in range(2)]  # the LM's path does as well
    with ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda k: [searches[k].nbest(x, 4) for x in inputs[k::2]], range(2)))
    assert [halves[k % 2][k // 2] for k in range(len(inputs))] == expected


def test_tuning_raises_alpha_when_the_acoustics_mislead(lm):
    _, binary = lm
    # The acoustics prefer a misspelling 0.9 : 0.1, so a weak LM weight keeps it.
    bad = [peaky("the cat sat th") + [{"e": 0.1, "a": 0.9}, {"": 0.98}] + peaky("re"),
           peaky("there is a c") + [{"a": 0.1, "u": 0.9}, {"": 0.98}] + peaky("t")]
    lp = LogProbs(["u1", "u2"], ["the cat sat there", "there is a cat"], [1.0, 1.0],
                  [spelled(f) for f in bad], TOK, "none")
    opts = DecodeOptions(method="beam", lm=str(binary), alpha=0.05, beta=0.0)
    start, _ = decode_many(opts, TOK, lp.log_probs)
    assert start != lp.texts  # the starting weights get it wrong
    params, table = tune(lp, opts, grid={"alpha": [0.05, 0.5, 1.0, 2.0], "beta": [0.0, 1.0]})
    assert params["alpha"] > 0.05
    assert min(r["wer"] for r in table) == 0.0
    tuned, _ = decode_many(opts.replace(**params), TOK, lp.log_probs)
    assert tuned == lp.texts


# "thare" by 0.7 : 0.3 in the acoustics; an LM knows "there" only
THARE = peaky("the cat sat th") + [{"e": 0.3, "a": 0.7}, {"": 0.98}] + peaky("re")


def test_nbest_rescorer_takes_the_big_lm_s_choice_among_the_first_pass_n_best(big_lm):
    log_probs = spelled(THARE)
    first = PrefixBeamSearch(TOK, None)  # a first pass by the acoustics alone
    nbest = first.nbest(log_probs, 8)
    assert [text for text, _, _ in nbest[:2]] == ["the cat sat thare", "the cat sat there"]
    big = load_lm(big_lm)
    assert sentence_log_prob(big, "the cat sat there") > sentence_log_prob(big, "the cat sat thare")
    assert NbestRescorer(first, big, alpha=0.5, beta=0.0, n=8).decode(log_probs) == "the cat sat there"
    assert NbestRescorer(first, big, alpha=0.0, beta=0.0, n=8).decode(log_probs) == "the cat sat thare"
    assert NbestRescorer(first, big, alpha=0.5, beta=0.0, n=1).decode(log_probs) == "the cat sat thare"
    lm_scores = [sentence_log_prob(big, text) for text, _, _ in nbest]
    assert rescore_nbest(nbest, lm_scores, 0.5, 0.0) == "the cat sat there"
    assert rescore_nbest([], [], 0.5, 0.0) == ""


def test_tuning_grid_and_decoding_rescore_with_the_same_formula(lm, big_lm):
    bad2 = peaky("there is a c") + [{"a": 0.3, "u": 0.7}, {"": 0.98}] + peaky("t")
    lp = LogProbs(["u1", "u2"], ["the cat sat there", "there is a cat"], [1.0, 1.0],
                  [spelled(THARE), spelled(bad2)], TOK, "none")
    # a first pass without LM weight, so the acoustics' spelling leads its n best
    opts = DecodeOptions(method="nbest-rescore", lm=str(lm[1]), rescore_lm=str(big_lm), alpha=0.0, beta=0.0)
    grid = {"rescore_alpha": [0.0, 0.2, 0.5, 1.0], "rescore_beta": [0.0, 2.0]}
    chosen = set()
    with DecoderPool(opts, TOK) as pool:
        texts_of = method("nbest-rescore").grid_texts(lp.log_probs, opts, pool)
        for a in grid["rescore_alpha"]:
            for b in grid["rescore_beta"]:
                pool.decoder.set_params(rescore_alpha=a, rescore_beta=b)
                decoded = [pool.decoder.decode(x) for x in lp.log_probs]
                assert texts_of({"rescore_alpha": a, "rescore_beta": b}) == decoded
                chosen.add(tuple(decoded))
    assert ("the cat sat thare", "there is a cut") in chosen and tuple(lp.texts) in chosen
    params, table = tune(lp, opts, grid)
    assert params["rescore_alpha"] > 0.0 and min(r["wer"] for r in table) == 0.0
