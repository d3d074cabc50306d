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
