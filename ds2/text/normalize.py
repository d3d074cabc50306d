"""Normalisation of English text to the 28 DS2 characters (space, apostrophe, a-z)."""

from __future__ import annotations

import re
import unicodedata

ENGLISH_CHARS = " '" + "abcdefghijklmnopqrstuvwxyz"

_APOSTROPHES = re.compile(r"[\u2018\u2019\u02bc`]")
_NOT_KEPT = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")
# An apostrophe is kept only inside a word ("don't"), not as a quote mark.
_QUOTE_APOSTROPHES = re.compile(r"(?<![a-z])'|'(?![a-z])")


def normalize_english(text: str) -> str | None:
    """Lower-case `text` and keep only space, apostrophe and a-z.

    Punctuation becomes a space and quotes around words are dropped. Returns None when
    the text holds digits or other letters that cannot be spelled with the 28 characters
    (a sentence with "1984" or "naïve" would otherwise be mangled), or when nothing is left.
    """
    text = unicodedata.normalize("NFKD", text)
    if any(unicodedata.combining(c) for c in text):
        return None
    text = _APOSTROPHES.sub("'", text).lower()
    if re.search(r"[0-9]", text) or re.search(r"[^\x00-\x7f]", text):
        return None
    text = _NOT_KEPT.sub(" ", text)
    text = _QUOTE_APOSTROPHES.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    return text or None


# -- Mandarin ------------------------------------------------------------------------------------
# Hanzi: the CJK Unified Ideographs, extension A, the compatibility ideographs and 〇 (U+3007, "zero").
_HANZI = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Z]")
_SPELLED_OUT = re.compile(r"[A-Za-z0-9]")  # what NFKC must not make of a number or symbol
# ANSI colour codes of terminal text (the fortune files hold some)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_hanzi(char: str) -> bool:
    """Whether `char` is a Chinese character (a CJK ideograph or 〇)."""
    return bool(_HANZI.fullmatch(char))


def normalize_mandarin(text: str) -> str | None:
    """Mandarin text as the `char-zh` tokens write it: Hanzi and upper-case Latin letters, no spaces.

    The policy:
    - full-width forms become half-width (NFKC: "ＡＢＣ，１" -> "ABC,1");
    - punctuation and symbols are removed, and so are spaces (Mandarin writes no word boundaries;
      word-segmented transcripts such as AISHELL-1's lose their spaces);
    - Latin letters are kept, upper-cased, each letter a character token ("iPhone" -> "IPHONE"):
      Mandarin speech spells brand names and acronyms;
    - a sentence with an Arabic digit is dropped (None): "2016" is read 二零一六 or
      两千零一十六, and the text does not say which; so is a sentence with a number or symbol
      that NFKC would spell in Latin letters or digits (Ⅻ -> XII, ℃ -> °C, ㎏ -> kg: read 十二,
      摄氏度, 公斤), with any other script (kana, Hangul, Cyrillic...) or with nothing left.
    """
    text = _ANSI.sub("", text)
    if any(_SPELLED_OUT.search(unicodedata.normalize("NFKC", c)) for c in text
           if not c.isascii() and not unicodedata.category(c).startswith("L")):
        return None
    text = unicodedata.normalize("NFKC", text).upper()
    kept = []
    for c in text:
        if is_hanzi(c) or _LATIN.fullmatch(c):
            kept.append(c)
        elif c.isdigit() or c.isalpha() or unicodedata.category(c).startswith("M"):
            return None  # a digit, another script's letter, or a combining mark: cannot be spelled
        # spaces, punctuation and symbols are dropped
    return "".join(kept) or None
