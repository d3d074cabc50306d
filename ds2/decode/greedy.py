"""Greedy (best path) CTC decoding."""

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
    return [tokenizer.decode(ids) for ids in greedy_ids(log_probs, lengths, tokenizer.blank_id)]
