"""The CutSet -> batch dataset used by training, validation and decoding."""

from __future__ import annotations

import logging

import torch
from lhotse import CutSet
from torch.nn.utils.rnn import pad_sequence

from ds2.text import Tokenizer

log = logging.getLogger(__name__)


class AsrDataset(torch.utils.data.Dataset):
    """Turns a CutSet (one sampler batch) into padded features and CTC targets.

    A cut whose features cannot be loaded or whose text cannot be tokenized is left out
    of the batch with a warning naming it, so one bad item never stops an epoch.
    `augment` (e.g. Lhotse's SpecAugment) is applied to the padded (B, T, F) features.
    """

    def __init__(self, tokenizer: Tokenizer, augment=None):
        self.tokenizer = tokenizer
        self.augment = augment

    def __getitem__(self, cuts: CutSet) -> dict:
        feats, targets, ids, texts = [], [], [], []
        for cut in cuts:
            text = " ".join(s.text for s in cut.supervisions if s.text)
            try:
                tokens = self.tokenizer.encode(text)
                if not tokens:
                    raise ValueError("empty transcript")
                x = torch.from_numpy(cut.load_features())
            except Exception as e:  # noqa: BLE001 - reported and skipped, never fatal
                log.warning("skipping %s in this batch: %s", cut.id, e)
                continue
            feats.append(x)
            targets.append(torch.tensor(tokens, dtype=torch.int32))
            ids.append(cut.id)
            texts.append(text)
        if not feats:
            return {"cut_ids": []}
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
        }
