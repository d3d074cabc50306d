"""Which cuts training and validation can use: a transcript the tokenizer can spell, and enough
output frames for CTC to align it.

Training drops the others up front (with a count per reason and their ids in the log), so that
no batch fails on one of them mid-epoch.
"""

from __future__ import annotations

import logging

import torch
from lhotse import CutSet

from ds2.text import Tokenizer

log = logging.getLogger(__name__)

EMPTY, UNMAPPABLE, TOO_SHORT = "empty transcript", "unmappable transcript", "too short for its label sequence"


class NoCutsLeft(ValueError):
    """Every cut of a split was dropped; the message says how many, why, and what to check."""


def ctc_label_frames(tokens: list[int]) -> int:
    """Fewest frames CTC needs for `tokens`: one per token plus a blank between repeats."""
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def filter_trainable(cuts: CutSet, tokenizer: Tokenizer, model, split: str, require_some: bool = False) -> CutSet:
    """Drop cuts with an empty or unmappable transcript, or too few output frames of `model`
    (anything with `output_lengths`, e.g. DeepSpeech2) for their label sequence; log a count per
    reason and the ids. With `require_some`, no cut kept is a NoCutsLeft that says how many
    were dropped and why."""
    dropped: dict[str, list[str]] = {EMPTY: [], UNMAPPABLE: [], TOO_SHORT: []}
    kept = []
    for cut in cuts:
        text = " ".join(s.text for s in cut.supervisions if s.text).strip()
        if not text:
            dropped[EMPTY].append(cut.id)
            continue
        try:
            tokens = tokenizer.encode(text)
        except ValueError:
            dropped[UNMAPPABLE].append(cut.id)
            continue
        out_frames = int(model.output_lengths(torch.tensor([cut.num_frames]))[0])
        if out_frames < ctc_label_frames(tokens):
            dropped[TOO_SHORT].append(cut.id)
            continue
        kept.append(cut)
    for reason, ids in dropped.items():
        if ids:
            log.warning("%s: dropped %d cuts (%s): %s%s", split, len(ids), reason, " ".join(ids[:10]),
                        " ..." if len(ids) > 10 else "")
    total = sum(len(ids) for ids in dropped.values()) + len(kept)
    log.info("%s: %d of %d cuts kept", split, len(kept), total)
    if require_some and not kept:
        raise NoCutsLeft(no_cuts_message(split, total, dropped))
    return CutSet.from_cuts(kept)


def no_cuts_message(split: str, total: int, dropped: dict[str, list[str]]) -> str:
    """One line: no cut of `split` is left, how many were dropped for which reasons, what to check."""
    if total == 0:
        return f"{split}: the cut set is empty; nothing to {'train on' if split == 'train' else 'validate on'}"
    reasons = "; ".join(f"{len(ids)} {reason} (e.g. {ids[0]})" for reason, ids in dropped.items() if ids)
    hints = []
    if dropped.get(UNMAPPABLE):
        hints.append("the transcripts use symbols the tokenizer of --lang-dir lacks (check their case and "
                     "normalisation against its tokens.txt)")
    if dropped.get(EMPTY):
        hints.append("the supervisions have no text")
    if dropped.get(TOO_SHORT):
        hints.append("the model's time stride (model.conv_strides) leaves fewer frames than the labels need")
    return (f"{split}: no cut is left {'to train on' if split == 'train' else 'to validate on'}: all {total} were "
            f"dropped ({reasons}): {'; '.join(hints)}")
