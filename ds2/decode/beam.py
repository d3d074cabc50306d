"""CTC prefix beam search with a word n-gram LM, as Deep Speech 2 decodes (Amodei et al. 2016, 3.8).

It maximises  log p_ctc(y|x) + alpha * log p_lm(y) + beta * word_count(y)  over character (or
BPE piece) sequences y. The word LM (KenLM, natural log) scores each word when the next word
boundary is emitted and the last word with </s> at the end; beta rewards every scored word.
The vocabulary stays open: a word the LM does not know gets its <unk> probability.

Speed comes from doing little per frame: tokens below `token_min_logp` are not extended,
frames where only the blank survives take a fast path without new prefixes, prefixes keep
their LM score and state once computed, beams more than `prune_margin` below the best are
dropped, and prefixes whose futures are the same are recombined (see `_prune`). The frame
loop runs in C++ (`_prefix_beam.cpp`, built by `pip install`), a line-by-line port of
`_search_python` below, which stays as the readable specification and is what the tests
compare the C++ loop against (`backend="python"`). KenLM stays in Python: the C++ loop asks
`kenlm_by_state_id` once per distinct (LM state, word) and caches the answer.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from dataclasses import dataclass

import numpy as np

from ds2.lm.ngram import LOG10_TO_LN
from ds2.text import Tokenizer

NEG_INF = -1e30  # finite, so that differences of two "impossible" scores stay defined


def log_add(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


@dataclass
class BeamOptions:
    """Search options; alpha and beta are chosen by `ds2 tune` on dev."""

    beam: int = 16  # prefixes kept after every frame
    alpha: float = 0.8  # LM weight
    beta: float = 1.0  # bonus per word (counters the LM's preference for fewer words)
    token_min_logp: float = -8.0  # a token below this log-prob at a frame is not extended
    prune_margin: float = 10.0  # drop prefixes scoring this far below the best
    oov_penalty: float = -10.0  # log10 units added to the LM score of a word the LM does not know
    partial_penalty: float = -10.0  # added to a prefix's score (natural log, not weighted by alpha)
    # while its unfinished word begins no word the LM knows; times length / 6 beyond 6 characters
    recombine: bool = True  # keep only the best of prefixes with the same future (see _prune)


def token_fragments(tokenizer: Tokenizer) -> list[str]:
    """The text each token appends: characters as they are, BPE's '\u2581x' as ' x', blank ''."""
    frags = []
    for i, sym in enumerate(tokenizer.symbols):
        if i == tokenizer.blank_id:
            frags.append("")
        elif sym.startswith("\u2581"):
            frags.append(" " + sym[1:])
        else:
            frags.append(sym)
    return frags


class _Prefix:
    """What a prefix keeps between frames: its CTC scores, LM score and state, and last token."""

    __slots__ = ("lm", "state", "last", "partial")

    def __init__(self, lm: float, state, last: int, partial: float = 0.0):
        self.lm = lm  # alpha * log p_lm of its complete words + beta * their count
        self.state = state  # KenLM state after its complete words
        self.last = last  # last token id (-1: none)
        self.partial = partial  # penalty while its unfinished word begins no LM word (else 0)


class PrefixBeamSearch:
    """Decode (T, V) CTC log-probs into text with a KenLM word model (or none: lm=None)."""

    def __init__(self, tokenizer: Tokenizer, lm=None, options: BeamOptions = BeamOptions(),
                 backend: str = "cpp"):
        if backend not in ("cpp", "python"):
            raise ValueError(f"backend must be 'cpp' or 'python', not {backend!r}")
        self.frags = token_fragments(tokenizer)
        self.blank = tokenizer.blank_id
        self.lm = lm
        self.opts = options
        self.word_prefixes: set[str] | None = None
        self.vocabulary: set[str] = set()
        if lm is not None:
            self.vocabulary = set(lm_vocabulary(lm))
            if backend == "python":  # the C++ loop keeps its own
                self.word_prefixes = {w[:k] for w in self.vocabulary for k in range(1, len(w) + 1)}
        self._word_cache: dict = {}
        self._core = None
        if backend == "cpp":
            try:
                from ds2.decode._prefix_beam import PrefixBeamCore
            except ImportError as e:
                raise ImportError("the C++ beam search (ds2/decode/_prefix_beam.cpp) is not built: reinstall ds2 "
                                  "with `pip install -e .` (it needs g++), or pass backend='python'") from e

            self._core = PrefixBeamCore(self.frags, self.blank, sorted(self.vocabulary),
                                        kenlm_by_state_id(lm) if lm is not None else None)

    # -- LM -----------------------------------------------------------------------------------
    def set_params(self, alpha: float | None = None, beta: float | None = None, beam: int | None = None):
        """Change the LM weight, word bonus or beam (the LM cache holds unweighted scores)."""
        changes = {"alpha": alpha, "beta": beta, "beam": beam}
        self.opts = dataclasses.replace(self.opts, **{k: v for k, v in changes.items() if v is not None})

    def _score_word(self, state, word: str):
        """(alpha * ln p(word | state) + beta, next state); the LM lookups are cached."""
        key = (state, word)
        hit = self._word_cache.get(key)
        if hit is None:
            hit = self._word_cache[key] = self._lm_log_prob(state, word)
        return self.opts.alpha * hit[0] + self.opts.beta, hit[1]

    def _lm_log_prob(self, state, word: str):
        """(ln p(word | state) with the OOV penalty, next KenLM state), unweighted."""
        import kenlm

        out = kenlm.State()
        log10 = self.lm.BaseScore(state, word, out)
        if word not in self.vocabulary and word != "</s>":
            log10 += self.opts.oov_penalty
        return log10 * LOG10_TO_LN, out

    def _partial_score(self, text: str) -> float:
        """The penalty of the unfinished last word of `text` if it begins no word of the LM:
        partial_penalty, times its length / 6 beyond 6 characters (as pyctcdecode); else 0."""
        if self.word_prefixes is None:
            return 0.0
        word = text[text.rfind(" ") + 1:]
        if not word or word in self.word_prefixes:
            return 0.0
        return self.opts.partial_penalty * max(1.0, len(word) / 6)

    def _extend(self, prefixes: dict, text: str, parent: _Prefix, token: int) -> tuple[str, _Prefix]:
        """The prefix `text` + token (created with its LM score if new); a word boundary at the
        start or after another changes no words, so it returns the parent itself."""
        frag = self.frags[token]
        if frag.startswith(" ") and (not text or text.endswith(" ")):
            frag = frag[1:]
            if not frag:
                return text, parent
        new_text = text + frag
        node = prefixes.get(new_text)
        if node is not None:
            return new_text, node
        lm, state = parent.lm, parent.state
        if self.lm is not None and frag.startswith(" "):
            word = text[text.rfind(" ") + 1:]
            if word:  # a word boundary closes the word before it
                score, state = self._score_word(state, word)
                lm += score
        node = _Prefix(lm, state, token, self._partial_score(new_text))
        prefixes[new_text] = node
        return new_text, node

    # -- search -------------------------------------------------------------------------------
    def decode(self, log_probs: np.ndarray) -> str:
        """Best text for one utterance's (T, V) log-probs (natural log, blank = tokenizer's)."""
        return self.nbest(log_probs, 1)[0][0]

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float, int]]:
        """The `n` best (text, log p_ctc, word count), best first, for LM rescoring."""
        if self._core is not None:
            o = self.opts
            # The LM callbacks allocate objects that would trigger the cyclic garbage collector,
            # whose passes over the heap cost more than the search; they create no cycles.
            gc_was_on = gc.isenabled()
            gc.disable()
            try:
                found = self._core.search(np.asarray(log_probs, dtype=np.float32), o.beam, o.alpha, o.beta,
                                          o.token_min_logp, o.prune_margin, o.oov_penalty, o.partial_penalty, n,
                                          o.recombine)
            finally:
                if gc_was_on:
                    gc.enable()
            return [(text, ctc, len(text.split())) for text, ctc, _ in found]
        beams, known = self._search_python(log_probs)
        scored = []
        for text, (pb, pnb) in beams.items():
            ctc = log_add(pb, pnb)
            scored.append((ctc + self._final_lm(text, known[text]), " ".join(text.split()), ctc))
        scored.sort(reverse=True)
        return [(text, ctc, len(text.split())) for _, text, ctc in scored[:n]]

    def _search_python(self, log_probs: np.ndarray) -> tuple[dict, dict]:
        opts, blank = self.opts, self.blank
        log_probs = np.asarray(log_probs, dtype=np.float32)
        rows = log_probs.tolist()
        mask = log_probs >= opts.token_min_logp
        mask[:, blank] = False
        candidates = [np.flatnonzero(m).tolist() for m in mask]

        start_state = None
        if self.lm is not None:
            import kenlm

            start_state = kenlm.State()
            self.lm.BeginSentenceWrite(start_state)
        known: dict[str, _Prefix] = {}  # every prefix met in this utterance, with its LM score
        known[""] = _Prefix(0.0, start_state, -1)
        beams = {"": (0.0, NEG_INF)}  # text -> (p_blank, p_non_blank) of the kept prefixes

        for t, row in enumerate(rows):
            lp_blank = row[blank]
            cands = candidates[t]
            if not cands:  # only the blank survives: no new prefix, no pruning needed
                beams = {text: (log_add(pb, pnb) + lp_blank,
                                pnb + row[known[text].last] if known[text].last >= 0 else NEG_INF)
                         for text, (pb, pnb) in beams.items()}
                continue
            nxt: dict[str, list[float]] = {}
            # Extensions scoring prune_margin below the best seen so far in this frame are not
            # made: the pruning would drop them (the LM can add at most a word bonus of beta).
            best = NEG_INF
            bonus = max(opts.beta, 0.0)
            for text, (pb, pnb) in beams.items():
                node = known[text]
                total = log_add(pb, pnb)
                acc = nxt.get(text)
                if acc is None:
                    acc = nxt[text] = [NEG_INF, NEG_INF]
                acc[0] = log_add(acc[0], total + lp_blank)
                best = max(best, total + lp_blank + node.lm + node.partial)
                if node.last >= 0:  # the last token repeated without a blank collapses into it
                    acc[1] = log_add(acc[1], pnb + row[node.last])
                for c in cands:
                    lp = row[c]
                    # a repeat of the last token only starts a new one after a blank
                    score = pb + lp if c == node.last else total + lp
                    if score + node.lm + bonus < best - opts.prune_margin:
                        continue
                    new_text, child = self._extend(known, text, node, c)
                    best = max(best, score + child.lm + child.partial)
                    if child is node:  # the same text (an extra word boundary)
                        acc[1] = log_add(acc[1], score)
                        continue
                    acc2 = nxt.get(new_text)
                    if acc2 is None:
                        acc2 = nxt[new_text] = [NEG_INF, NEG_INF]
                    acc2[1] = log_add(acc2[1], score)
            beams = self._prune(nxt, known)
        return beams, known

    def _prune(self, nxt: dict, known: dict) -> dict:
        """The `beam` best prefixes within `prune_margin` of the best. Prefixes with the same LM
        state, unfinished word and last token have the same future (recombination, as a graph
        decoder merges paths into one state): only the best of them is kept, which leaves room in
        the beam for prefixes that differ where it still matters."""
        opts = self.opts
        scored = []
        for text, (pb, pnb) in nxt.items():
            node = known[text]
            scored.append((log_add(pb, pnb) + node.lm + node.partial, text, pb, pnb))
        scored.sort(key=lambda s: s[0], reverse=True)
        floor = scored[0][0] - opts.prune_margin
        kept, seen = {}, set()
        for score, text, pb, pnb in scored:
            if len(kept) == opts.beam or score < floor:
                break
            node = known[text]
            key = (node.state, node.last, text[text.rfind(" ") + 1:]) if opts.recombine else text
            if key not in seen:
                seen.add(key)
                kept[text] = (pb, pnb)
        return kept

    def _final_lm(self, text: str, node: _Prefix) -> float:
        """The prefix's LM score with its last word and </s> scored."""
        if self.lm is None:
            return 0.0
        score, state = node.lm, node.state
        word = text[text.rfind(" ") + 1:]
        if word:
            s, state = self._score_word(state, word)
            score += s
        s, _ = self._score_word(state, "</s>")
        return score + s - self.opts.beta  # </s> is not a word


def kenlm_by_state_id(lm):
    """KenLM for the C++ loop, which names LM states by number (0: <s>) and caches the answers:
    a function (state id, word) -> (log10 p(word | state), id of the next state). It runs once
    per new (state, word) of a search, so it is kept to the fewest Python operations."""
    import kenlm

    State, base_score = kenlm.State, lm.BaseScore
    start = State()
    lm.BeginSentenceWrite(start)
    states, ids = [start], {start: 0}

    def score(state_id: int, word: str) -> tuple[float, int]:
        out = State()
        log10 = base_score(states[state_id], word, out)
        next_id = ids.get(out)
        if next_id is None:
            next_id = ids[out] = len(states)
            states.append(out)
        return log10, next_id

    return score


def lm_vocabulary(lm) -> list[str]:
    """Words of a KenLM model, read from the ARPA file next to its binary when it has no vocab API."""
    from pathlib import Path

    from ds2.lm.ngram import arpa_vocabulary

    path = Path(lm.path.decode() if isinstance(lm.path, bytes) else lm.path)
    arpa = path if path.suffix == ".arpa" else path.with_suffix(".arpa")
    if not arpa.is_file():
        raise FileNotFoundError(f"the vocabulary of {path} is read from {arpa}, which is missing")
    return arpa_vocabulary(arpa)
