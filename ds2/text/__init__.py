"""Text normalisation and tokenizers (one interface for characters and BPE)."""

from ds2.text.normalize import is_hanzi, normalize_english, normalize_mandarin
from ds2.text.tokenizer import (
    BpeTokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    tokenizer_from_dict,
)

__all__ = [
    "BpeTokenizer",
    "CharTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "is_hanzi",
    "normalize_english",
    "normalize_mandarin",
    "tokenizer_from_dict",
]
