"""Text normalisation and tokenizers (one interface for characters and BPE)."""

from ds2.text.normalize import normalize_english
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
    "normalize_english",
    "tokenizer_from_dict",
]
