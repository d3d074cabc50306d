"""CTC prefix beam search with a word n-gram LM, as Deep Speech 2 decodes (Amodei et al. 2016, 3.8).

It maximises  log p_ctc(y|x) + alpha * log p_lm(y) + beta * word_count(y)  over character (or
BPE piece) sequences y. The word LM (KenLM, natural log) scores each word when the next word
boundary is emitted and the last word with </s> at the end; beta rewards every scored word.
The vocabulary stays open: a word the LM does not know gets its <unk> probability.
Text without word boundaries (Mandarin characters: the tokenizer writes no spaces) takes a
character LM instead: every character is a word to KenLM, scored as it is emitted, and beta
is a bonus per character, as the paper decodes Mandarin.

Speed comes from doing little per frame: tokens below `token_min_logp` are not extended,
frames where only the blank survives take a fast path without new prefixes, prefixes keep
their LM score and state once computed, beams more than `prune_margin` below the best are
dropped, and prefixes whose futures are the same (same LM state, unfinished word and last
token) are recombined, as a graph decoder merges paths into one state.

This is the package's one beam search, in C++ (`_prefix_beam.cpp`, built by `pip install`
with KenLM's query library compiled in): the search loads the LM file itself (once per process)
and asks KenLM directly, once per distinct (LM state, word), caching the answers; it never calls
back into Python and releases the GIL while it runs. A plain Python version of the same search,
written for reading rather than speed, lives in tests/prefix_beam_reference.py (it asks the
Python `kenlm` module); a test holds the C++ search to the same n-best and CTC scores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ds2.lm.ngram import lm_unit, lm_words
from ds2.text import Tokenizer
from ds2.text.tokenizer import UNK, UNK_TEXT


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
    recombine: bool = True  # keep only the best of prefixes with the same future (see above)


def token_fragments(tokenizer: Tokenizer) -> list[str]:
    """The text each token appends: characters as they are, BPE's '\u2581x' as ' x', blank '',
    <unk> as the one character tokenizers write it with (UNK_TEXT)."""
    frags = []
    for i, sym in enumerate(tokenizer.symbols):
        if i == tokenizer.blank_id:
            frags.append("")
        elif sym == UNK:
            frags.append(UNK_TEXT)
        elif sym.startswith("\u2581"):
            frags.append(" " + sym[1:])
        else:
            frags.append(sym)
    return frags


class PrefixBeamSearch:
    """Decode (T, V) CTC log-probs into text with a KenLM word model (or none: lm=None).

    `lm` is a `kenlm.Model` (ds2.lm.ngram.load_lm, which checks the file) or the path of one. The
    search runs in C++ (`_prefix_beam.cpp`), which loads the same file with its own KenLM; this
    class gives it the token fragments, the LM's path and vocabulary, and the options at every call.
    One object decodes one utterance at a time (its LM cache is not shared between threads)."""

    def __init__(self, tokenizer: Tokenizer, lm=None, options: BeamOptions = BeamOptions()):
        try:
            from ds2.decode._prefix_beam import PrefixBeamCore
        except ImportError as e:
            raise ImportError("the C++ beam search (ds2/decode/_prefix_beam.cpp) is not built: reinstall ds2 "
                              "with `pip install -e .` (it needs g++)") from e
        self.lm = lm
        self.opts = options
        self.unit = lm_unit(tokenizer)
        vocabulary = sorted(set(lm_vocabulary(lm))) if lm is not None else []
        if self.unit == "char":
            check_char_lm(vocabulary, lm)
        self._core = PrefixBeamCore(token_fragments(tokenizer), tokenizer.blank_id, vocabulary,
                                    str(lm_path(lm)) if lm is not None else None, self.unit == "char")

    def set_params(self, alpha: float | None = None, beta: float | None = None, beam: int | None = None):
        """Change the LM weight, word bonus or beam (the LM cache holds unweighted scores)."""
        changes = {"alpha": alpha, "beta": beta, "beam": beam}
        self.opts = dataclasses.replace(self.opts, **{k: v for k, v in changes.items() if v is not None})

    def decode(self, log_probs: np.ndarray) -> str:
        """Best text for one utterance's (T, V) log-probs (natural log, blank = tokenizer's)."""
        return self.nbest(log_probs, 1)[0][0]

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float, int]]:
        """The `n` best (text, log p_ctc, LM word count: characters for a character LM), best first,
        for LM rescoring."""
        o = self.opts
        found = self._core.search(np.asarray(log_probs, dtype=np.float32), o.beam, o.alpha, o.beta,
                                  o.token_min_logp, o.prune_margin, o.oov_penalty, o.partial_penalty, n, o.recombine)
        return [(text, ctc, len(lm_words(text, self.unit))) for text, ctc, _ in found]


def lm_path(lm) -> Path:
    """The file of a KenLM model: a `kenlm.Model`'s path, or the path itself."""
    if isinstance(lm, (str, Path)):
        return Path(lm)
    return Path(lm.path.decode() if isinstance(lm.path, bytes) else lm.path)


def check_char_lm(vocabulary: list[str], lm) -> None:
    """ValueError unless the LM of a tokenizer without word boundaries is a character LM: a word
    LM's words would all be unknown to a search that scores one character at a time."""
    if vocabulary and sum(len(w) > 1 for w in vocabulary) > len(vocabulary) / 2:
        raise ValueError(f"{lm_path(lm)} is a word LM (e.g. {next(w for w in vocabulary if len(w) > 1)!r}), but the model's "
                         f"tokens write no spaces: it needs a character LM (`ds2 lm train TEXT DIR --unit char`)")


def lm_vocabulary(lm) -> list[str]:
    """Words of a KenLM model, read from the ARPA file next to its binary when it has no vocab API."""
    from ds2.lm.ngram import arpa_vocabulary

    path = lm_path(lm)
    arpa = path if path.suffix == ".arpa" else path.with_suffix(".arpa")
    if not arpa.is_file():
        raise FileNotFoundError(f"the vocabulary of {path} is read from {arpa}, which is missing")
    return arpa_vocabulary(arpa)
