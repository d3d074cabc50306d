"""Greedy (best path) CTC decoding: the package's one greedy decode, used by validation, by
`ds2 average`, by `ds2 decode --method greedy` and by `ds2 transcribe` alike (so their CERs agree).
NumPy only: the onnxruntime backend decodes without torch."""

from __future__ import annotations

import numpy as np

from ds2.text import Tokenizer


def collapse(best, blank_id: int = 0, previous: int = -1) -> list[int]:
    """CTC's collapse of a frame-wise token sequence: repeats merged, blanks removed. `previous`:
    the token of the frame before `best` (-1: none), for a sequence that arrives in pieces."""
    best = np.asarray(best)
    if best.size == 0:
        return []
    keep = np.ones(len(best), dtype=bool)
    keep[0] = best[0] != previous
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != blank_id]


def best_path_text(log_probs: np.ndarray, tokenizer: Tokenizer) -> str:
    """The best-path text of one utterance's (T, V) log-probs.

    Whitespace is normalised (no leading, trailing or repeated spaces): a character model can
    emit a space at either end or two in a row, and a sentencepiece one a lone word-boundary
    piece; the text should not depend on that, nor on which tokens spell it."""
    ids = collapse(np.asarray(log_probs).argmax(axis=-1), tokenizer.blank_id)
    return " ".join(tokenizer.decode(ids).split())


def greedy_decode(log_probs, lengths, tokenizer: Tokenizer) -> list[str]:
    """The best-path text (as `best_path_text`) of each utterance of a (B, T, V) torch batch."""
    best = log_probs.float().cpu().numpy()
    return [best_path_text(best[i, :n], tokenizer) for i, n in enumerate(lengths.cpu().tolist())]
