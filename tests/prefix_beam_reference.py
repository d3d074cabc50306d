"""The Python prefix beam search: the reference the C++ loop (ds2/decode/_prefix_beam.cpp) is tested against.

The package has one beam search, ds2.decode.beam.PrefixBeamSearch, which is C++ with KenLM
compiled in. This is the same search written for reading: prefixes keyed by their text, the
LM's word prefixes in a set, plain dicts and lists, and the Python `kenlm` module's states (the
same KenLM library, so the same LM answers). The C++ search implements the same scores, pruning
and recombination with its own data structures (a tree of prefixes, a byte trie of the LM
words, numbered LM states, a partial sort of the ranking), so the two give the same n-best and
CTC scores, up to the order of exactly equal scores; tests/test_lm_decode.py checks that.
"""

from __future__ import annotations

import math

import numpy as np

from ds2.decode.beam import BeamOptions, lm_vocabulary, token_fragments
from ds2.lm.ngram import LOG10_TO_LN, lm_unit, lm_words
from ds2.text import Tokenizer

NEG_INF = -1e30  # finite, so that differences of two "impossible" scores stay defined (kNegInf in C++)


def log_add(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


class _Prefix:
    """What a prefix keeps between frames: its CTC scores, LM score and state, and last token."""

    __slots__ = ("lm", "state", "last", "partial")

    def __init__(self, lm: float, state, last: int, partial: float = 0.0):
        self.lm = lm  # alpha * log p_lm of its complete words + beta * their count
        self.state = state  # KenLM state after its complete words
        self.last = last  # last token id (-1: none)
        self.partial = partial  # penalty while its unfinished word begins no LM word (else 0)


class ReferencePrefixBeamSearch:
    """`nbest(log_probs, n)` as PrefixBeamSearch.nbest, computed in Python (slowly)."""

    def __init__(self, tokenizer: Tokenizer, lm=None, options: BeamOptions = BeamOptions()):
        self.frags = token_fragments(tokenizer)
        self.blank = tokenizer.blank_id
        self.unit = lm_unit(tokenizer)  # "char": every token is a word of the LM, scored as it is emitted
        self.lm = lm
        self.opts = options
        self.word_prefixes: set[str] | None = None
        self.vocabulary: set[str] = set()
        if lm is not None:
            self.vocabulary = set(lm_vocabulary(lm))
            self.word_prefixes = {w[:k] for w in self.vocabulary for k in range(1, len(w) + 1)}
        self._word_cache: dict = {}

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float, int]]:
        """The `n` best (text, log p_ctc, word count), best first."""
        beams, known = self._search(log_probs)
        scored = []
        for text, (pb, pnb) in beams.items():
            ctc = log_add(pb, pnb)
            scored.append((ctc + self._final_lm(text, known[text]), " ".join(text.split()), ctc))
        scored.sort(reverse=True)
        return [(text, ctc, len(lm_words(text, self.unit))) for _, text, ctc in scored[:n]]

    def _unfinished_word(self, text: str) -> str:
        """The last word of `text` that the LM has not scored yet (none with a character LM)."""
        return "" if self.unit == "char" else text[text.rfind(" ") + 1:]

    # -- LM -----------------------------------------------------------------------------------
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
        word = self._unfinished_word(text)
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
        if self.unit == "char":  # the character is a word of the LM: scored now
            if self.lm is not None:
                score, state = self._score_word(state, frag)
                lm += score
        elif self.lm is not None and frag.startswith(" "):
            word = text[text.rfind(" ") + 1:]
            if word:  # a word boundary closes the word before it
                score, state = self._score_word(state, word)
                lm += score
        node = _Prefix(lm, state, token, self._partial_score(new_text))
        prefixes[new_text] = node
        return new_text, node

    # -- search -------------------------------------------------------------------------------
    def _search(self, log_probs: np.ndarray) -> tuple[dict, dict]:
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
            key = (node.state, node.last, self._unfinished_word(text)) if opts.recombine else text
            if key not in seen:
                seen.add(key)
                kept[text] = (pb, pnb)
        return kept

    def _final_lm(self, text: str, node: _Prefix) -> float:
        """The prefix's LM score with its last word and </s> scored."""
        if self.lm is None:
            return 0.0
        score, state = node.lm, node.state
        word = self._unfinished_word(text)
        if word:
            s, state = self._score_word(state, word)
            score += s
        s, _ = self._score_word(state, "</s>")
        return score + s - self.opts.beta  # </s> is not a word
