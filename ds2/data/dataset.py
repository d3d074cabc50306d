"""The CutSet -> batch dataset used by training, validation and decoding."""

from __future__ import annotations

import torch
from lhotse import CutSet
from torch.nn.utils.rnn import pad_sequence

from ds2.text import Tokenizer


class AsrDataset(torch.utils.data.Dataset):
    """Turns a CutSet (one sampler batch) into padded features and CTC targets.

    A cut whose features cannot be loaded or whose text cannot be tokenized is left out
    of the batch and listed in its "skipped" entry as (cut id, reason), so one bad item never
    stops an epoch and the training loop can count and name them.
    `augment` (e.g. Lhotse's SpecAugment) is applied to the padded (B, T, F) features.
    """

    def __init__(self, tokenizer: Tokenizer, augment=None):
        self.tokenizer = tokenizer
        self.augment = augment

    def __getitem__(self, cuts: CutSet) -> dict:
        feats, targets, ids, texts, skipped = [], [], [], [], []
        for cut in cuts:
            text = " ".join(s.text for s in cut.supervisions if s.text)
            try:
                tokens = self.tokenizer.encode(text)
            except ValueError:
                tokens = None
            if not tokens:
                skipped.append((cut.id, "empty transcript" if not text.strip() else "unmappable transcript"))
                continue
            try:
                x = torch.from_numpy(cut.load_features())
            except Exception as e:  # noqa: BLE001 - reported and skipped, never fatal
                skipped.append((cut.id, f"unreadable features ({type(e).__name__}: {e})"))
                continue
            feats.append(x)
            targets.append(torch.tensor(tokens, dtype=torch.int32))
            ids.append(cut.id)
            texts.append(text)
        if not feats:
            return {"cut_ids": [], "skipped": skipped}
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        padded = pad_sequence(feats, batch_first=True)
        if self.augment is not None:
            padded = self.augment(padded)
        return {
            "features": padded,
            "feature_lens": lengths,
            "targets": torch.cat(targets),
            "target_lens": torch.tensor([len(t) for t in targets], dtype=torch.int64),
            "cut_ids": ids,
            "texts": texts,
            "skipped": skipped,
        }
