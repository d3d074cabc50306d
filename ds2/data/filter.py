"""Which cuts training and validation can use: a transcript the tokenizer can spell, and enough
output frames for CTC to align it.

Training drops the others up front (with a count per reason and their ids in the log), so that
no batch fails on one of them mid-epoch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lhotse import CutSet

from ds2.text import Tokenizer

log = logging.getLogger(__name__)

EMPTY, UNMAPPABLE, TOO_SHORT = "empty transcript", "unmappable transcript", "too short for its label sequence"
NO_FEATURES = "features not found"


class NoCutsLeft(ValueError):
    """Every cut of a split was dropped; the message says how many, why, and what to check."""


def ctc_label_frames(tokens: list[int]) -> int:
    """Fewest frames CTC needs for `tokens`: one per token plus a blank between repeats."""
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def read_cut_set(path: str | Path) -> CutSet:
    """The cuts of `path`, in memory; ValueError (one line) when it is not a Lhotse cut set (not a
    manifest at all, or recordings or supervisions) or holds no cut."""
    from lhotse.cut import Cut

    try:
        cuts = CutSet.from_file(path).to_eager()
    except Exception as e:  # noqa: BLE001 - Lhotse says "not a valid manifest" in many ways
        cuts, why = None, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
    else:
        first = next(iter(cuts), None)
        why = None if first is None or isinstance(first, Cut) else f"it holds {type(first).__name__}s"
    if why:
        raise ValueError(f"{path} is not a Lhotse cut set ({why}): give the cuts of `ds2 features` "
                         f"(PREFIX_cuts_SPLIT.jsonl.gz)")
    if len(cuts) == 0:
        raise ValueError(f"{path} holds no cuts")
    return cuts


def has_features(cut, stored: dict[str, bool]) -> bool:
    """Whether `cut` has features in memory or in a file (or folder) that exists; `stored` keeps
    each path's answer, so that a path is looked up once (a chunky file holds many cuts)."""
    features = cut.features if cut.has_features else None
    if features is None:
        return False
    if not features.storage_path or features.storage_type.startswith("memory"):
        return True
    path = features.storage_path
    if path not in stored:
        stored[path] = Path(path).exists()
    return stored[path]


class TrainableCuts:
    """The check of each cut (`keep`), with the count of each reason to drop one, and their ids:
    `report` logs them once every cut has been seen. One pass suffices, so cuts read lazily
    from a manifest are never held in memory for it."""

    def __init__(self, tokenizer: Tokenizer, model, split: str):
        self.tokenizer, self.model, self.split = tokenizer, model, split
        self.dropped: dict[str, list[str]] = {NO_FEATURES: [], EMPTY: [], UNMAPPABLE: [], TOO_SHORT: []}
        self.kept = 0
        self.stored: dict[str, bool] = {}  # feature file (or folder) -> whether it exists

    def reason_to_drop(self, cut) -> str | None:
        """Why `cut` cannot be trained on, or None."""
        if not has_features(cut, self.stored):
            return NO_FEATURES
        text = " ".join(s.text for s in cut.supervisions if s.text).strip()
        if not text:
            return EMPTY
        try:
            tokens = self.tokenizer.encode(text)
        except ValueError:
            return UNMAPPABLE
        out_frames = int(self.model.output_lengths(torch.tensor([cut.num_frames]))[0])
        return TOO_SHORT if out_frames < ctc_label_frames(tokens) else None

    def keep(self, cut) -> bool:
        reason = self.reason_to_drop(cut)
        if reason:
            self.dropped[reason].append(cut.id)
        else:
            self.kept += 1
        return reason is None

    def report(self, require_some: bool = False) -> None:
        """Log a count per reason and the first ids; with `require_some`, no cut kept is a
        NoCutsLeft that says how many were dropped and why."""
        for reason, ids in self.dropped.items():
            if ids:
                log.warning("%s: dropped %d cuts (%s): %s%s", self.split, len(ids), reason, " ".join(ids[:10]),
                            " ..." if len(ids) > 10 else "")
        total = sum(len(ids) for ids in self.dropped.values()) + self.kept
        log.info("%s: %d of %d cuts kept", self.split, self.kept, total)
        if require_some and not self.kept:
            raise NoCutsLeft(no_cuts_message(self.split, total, self.dropped))


def filter_trainable(cuts: CutSet, tokenizer: Tokenizer, model, split: str, require_some: bool = False) -> CutSet:
    """Drop cuts with an empty or unmappable transcript, or too few output frames of `model`
    (anything with `output_lengths`, e.g. DeepSpeech2) for their label sequence; log a count per
    reason and the ids. With `require_some`, no cut kept is a NoCutsLeft that says how many
    were dropped and why. The kept cuts are returned in memory (dev sets; training reads
    its cuts lazily through ds2.data.train_cuts with the same `TrainableCuts` check)."""
    check = TrainableCuts(tokenizer, model, split)
    kept = [cut for cut in cuts if check.keep(cut)]
    check.report(require_some)
    return CutSet.from_cuts(kept)


def no_cuts_message(split: str, total: int, dropped: dict[str, list[str]]) -> str:
    """One line: no cut of `split` is left, how many were dropped for which reasons, what to check."""
    if total == 0:
        return f"{split}: the cut set is empty; nothing to {'train on' if split == 'train' else 'validate on'}"
    reasons = "; ".join(f"{len(ids)} {reason} (e.g. {ids[0]})" for reason, ids in dropped.items() if ids)
    hints = []
    if dropped.get(NO_FEATURES):
        hints.append("the cut set names feature files that are not there (moved or deleted, or written with a "
                     "relative path from another folder by an older ds2): run `ds2 features` again")
    if dropped.get(UNMAPPABLE):
        hints.append("the transcripts use symbols the tokenizer of --lang-dir lacks (check their case and "
                     "normalisation against its tokens.txt)")
    if dropped.get(EMPTY):
        hints.append("the supervisions have no text")
    if dropped.get(TOO_SHORT):
        hints.append("the model's time stride (model.conv_strides) leaves fewer frames than the labels need")
    return (f"{split}: no cut is left {'to train on' if split == 'train' else 'to validate on'}: all {total} were "
            f"dropped ({reasons}): {'; '.join(hints)}")
