"""Where each token of a text lies in a model's frames: the CTC alignment behind word times."""

from __future__ import annotations

import numpy as np


def ctc_align(log_probs: np.ndarray, tokens: list[int], blank: int = 0) -> list[tuple[int, int]] | None:
    """(first frame, last frame + 1) of each token in the most likely CTC path that spells
    `tokens` (Viterbi); None when the frames are too few to spell them."""
    T, L = len(log_probs), len(tokens)
    if L == 0:
        return []
    ext = np.full(2 * L + 1, blank, dtype=np.int64)
    ext[1::2] = tokens
    S = len(ext)
    skip = np.zeros(S, dtype=bool)  # a token state may follow the token two states back
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    lp = log_probs[:, ext]  # (T, S)
    alpha = np.full(S, -np.inf)
    alpha[0], alpha[1] = lp[0, 0], lp[0, 1]
    back = np.zeros((T, S), dtype=np.int8)
    for t in range(1, T):
        stay, step = alpha, np.concatenate([[-np.inf], alpha[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha[:-2]]), -np.inf)
        cands = np.stack([stay, step, jump])
        back[t] = cands.argmax(axis=0)
        alpha = cands.max(axis=0) + lp[t]
    end = S - 1 if alpha[S - 1] >= alpha[S - 2] else S - 2
    if not np.isfinite(alpha[end]):
        return None
    spans = [[-1, -1] for _ in range(L)]
    s = end
    for t in range(T - 1, -1, -1):
        if s % 2 == 1:
            k = s // 2
            spans[k][1] = t + 1 if spans[k][1] < 0 else spans[k][1]
            spans[k][0] = t
        s -= int(back[t][s])
    return [tuple(x) for x in spans]
