"""Tokenizers: map normalised text to token ids and back, with id 0 the CTC blank.

One interface (`Tokenizer`) serves English characters, Mandarin characters and
sentencepiece BPE. A tokenizer is saved into every checkpoint as a plain dict
(`to_dict` / `tokenizer_from_dict`), so decoding needs nothing but the checkpoint.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Iterable

from ds2.text.normalize import ENGLISH_CHARS

BLANK = "<blk>"
SPACE = "<space>"  # how the space character is written in tokens.txt
UNK = "<unk>"  # the token of characters never seen in training (char-zh), written as UNK_TEXT
UNK_TEXT = "\u2047"  # "⁇", as sentencepiece writes <unk>: one character, an error wherever it stands


class Tokenizer:
    """Interface: `encode`, `decode`, `vocab_size`, `blank_id` (always 0), `to_dict`."""

    blank_id = 0

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def symbols(self) -> list[str]:
        """Token strings indexed by id (id 0 is the blank)."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; raises ValueError when a symbol is not in the vocabulary."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a token id sequence (blanks and repeats must already be removed)."""
        raise NotImplementedError

    @property
    def word_boundaries(self) -> bool:
        """Whether the tokens write spaces between words (English characters, BPE's \u2581). Without
        them (Mandarin characters) every token is a word to the n-gram LM: a character LM."""
        return True

    def can_encode(self, text: str) -> bool:
        """Whether `text` is non-empty and spelled without `<unk>` (every character known)."""
        try:
            ids = self.encode(text)
        except ValueError:
            return False
        return len(ids) > 0 and UNK not in (self.symbols[i] for i in set(ids))

    def to_dict(self) -> dict:
        raise NotImplementedError

    def save(self, lang_dir: str | Path) -> None:
        """Write `tokens.txt` ("symbol id" per line, icefall's format) and what loading needs."""
        lang_dir = Path(lang_dir)
        lang_dir.mkdir(parents=True, exist_ok=True)
        with open(lang_dir / "tokens.txt", "w", encoding="utf-8") as f:
            for i, sym in enumerate(self.symbols):
                f.write(f"{SPACE if sym == ' ' else sym} {i}\n")


class CharTokenizer(Tokenizer):
    """Characters as tokens: English (blank + 28) by default, or any character list (Mandarin).

    With `<unk>` among the characters (char-zh), a character outside the vocabulary encodes as
    `<unk>` instead of raising: a dev or test transcript may hold a character that training never
    saw, and it is scored as the error it will be (the model never emits it)."""

    def __init__(self, chars: Iterable[str] = ENGLISH_CHARS):
        chars = list(chars)
        if len(set(chars)) != len(chars):
            raise ValueError("duplicate characters in the vocabulary")
        self._symbols = [BLANK] + chars
        self._ids = {c: i for i, c in enumerate(self._symbols)}
        self._unk = self._ids.get(UNK)
        self._text = [UNK_TEXT if s == UNK else s for s in self._symbols]

    @classmethod
    def from_texts(cls, texts: Iterable[str], unk: bool = False) -> "CharTokenizer":
        """Vocabulary of every character in `texts` (space first if present), e.g. for Mandarin;
        with `unk`, `<unk>` first (id 1) for the characters of other texts."""
        chars = sorted({c for t in texts for c in t})
        if " " in chars:
            chars.remove(" ")
            chars.insert(0, " ")
        return cls(([UNK] if unk else []) + chars)

    @property
    def vocab_size(self) -> int:
        return len(self._symbols)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def word_boundaries(self) -> bool:
        return " " in self._ids

    def encode(self, text: str) -> list[int]:
        if self._unk is not None:
            return [self._ids.get(c, self._unk) for c in text]
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self._text[i] for i in ids if i != self.blank_id)

    def to_dict(self) -> dict:
        return {"type": "char", "chars": self._symbols[1:]}


class BpeTokenizer(Tokenizer):
    """Sentencepiece BPE/unigram pieces, with `<blk>` at id 0 and `<unk>` at id 1."""

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self._proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        if self._sp.id_to_piece(0) != BLANK:
            raise ValueError("the sentencepiece model must have <blk> at id 0 (train it with BpeTokenizer.train)")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_type: str = "bpe") -> "BpeTokenizer":
        import io

        import sentencepiece as spm

        if vocab_size < 3:
            raise ValueError(f"a BPE vocabulary of {vocab_size} tokens is too small: it needs the blank, <unk> and "
                             "every character of the text")
        out = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(list(texts)),
                model_writer=out,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                user_defined_symbols=[BLANK],
                unk_id=1,
                bos_id=-1,
                eos_id=-1,
                minloglevel=2,
            )
        except RuntimeError as e:
            raise ValueError(_vocab_size_problem(vocab_size, str(e))) from None
        return cls(out.getvalue())

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def symbols(self) -> list[str]:
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    def encode(self, text: str) -> list[int]:
        ids = self._sp.encode(text)
        if self._sp.unk_id() in ids:
            raise ValueError(f"text {text!r} holds symbols outside the BPE vocabulary")
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode([i for i in ids if i != self.blank_id])

    def to_dict(self) -> dict:
        return {"type": "bpe", "model": base64.b64encode(self._proto).decode("ascii")}

    def save(self, lang_dir: str | Path) -> None:
        super().save(lang_dir)
        (Path(lang_dir) / "bpe.model").write_bytes(self._proto)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokenizer saved with `Tokenizer.to_dict` (e.g. from a checkpoint)."""
    if d["type"] == "char":
        return CharTokenizer(d["chars"])
    if d["type"] == "bpe":
        return BpeTokenizer(base64.b64decode(d["model"]))
    raise ValueError(f"unknown tokenizer type {d['type']!r}")


def load_tokenizer(lang_dir: str | Path) -> Tokenizer:
    """Load the tokenizer a `ds2 tokens` stage wrote to `lang_dir`; ValueError (one line) when it
    has none or it is not one `ds2 tokens` writes."""
    lang_dir = Path(lang_dir)
    if (lang_dir / "bpe.model").exists():
        return BpeTokenizer((lang_dir / "bpe.model").read_bytes())
    path = lang_dir / "tokens.txt"
    if not path.is_file():
        raise ValueError(f"{lang_dir} has no tokens.txt (nor bpe.model): write them with `ds2 tokens {lang_dir} "
                         f"--type ...` (see ds2 tokens --help)")
    symbols = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        sym, _, index = line.rpartition(" ")
        if not sym or index != str(number - 1):
            raise ValueError(f"{path}, line {number}: {line[:80]!r} is not 'symbol {number - 1}' (write the file "
                             f"with `ds2 tokens`)")
        symbols.append(" " if sym == SPACE else sym)
    if not symbols or symbols[0] != BLANK:
        raise ValueError(f"{path} must start with {BLANK} 0")
    return CharTokenizer(symbols[1:])


def _vocab_size_problem(vocab_size: int, error: str) -> str:
    """One line for sentencepiece's refusal to train `vocab_size` pieces (its INTERNAL message)."""
    at_most = re.search(r"too high \(\d+\)\. Please set it to a value <= (\d+)", error)
    at_least = re.search(r"smaller than required_chars\. \d+ vs (\d+)", error)
    if at_most:
        return (f"a BPE vocabulary of {vocab_size} tokens is more than the training text allows: at most "
                f"{at_most.group(1)} (give a smaller --vocab-size, or more text)")
    if at_least:
        return (f"a BPE vocabulary of {vocab_size} tokens is smaller than the training text's characters need: at "
                f"least {at_least.group(1)}")
    return f"sentencepiece cannot train a BPE vocabulary of {vocab_size} tokens: {error.splitlines()[0][:300]}"
