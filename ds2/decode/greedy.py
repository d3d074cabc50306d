"""Greedy (best path) CTC decoding: the package's one greedy decode, used by validation, by
`ds2 average` and by `ds2 decode --method greedy` alike (so their CERs agree)."""

from __future__ import annotations

import torch

from ds2.text import Tokenizer


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0) -> list[list[int]]:
    """Best-path token ids: argmax per frame, repeats merged, blanks removed. log_probs: (B, T, V)."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for seq, n in zip(best, lengths.cpu().tolist()):
        seq = torch.unique_consecutive(seq[:n])
        out.append([int(t) for t in seq if t != blank_id])
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, tokenizer: Tokenizer) -> list[str]:
    """The best-path text of each utterance of a (B, T, V) batch, `lengths` frames each.

    Whitespace is normalised (no leading, trailing or repeated spaces): a character model can
    emit a space at either end or two in a row, and a sentencepiece one a lone word-boundary
    piece; the text should not depend on that, nor on which tokens spell it."""
    return [" ".join(tokenizer.decode(ids).split()) for ids in greedy_ids(log_probs, lengths, tokenizer.blank_id)]
