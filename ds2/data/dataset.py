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
    `augment` (e.g. Lhotse's SpecAugment) is applied to the padded (B, T, F) features;
    `cut_transforms` (e.g. `ds2.data.augment.NoiseMix`) map the batch's CutSet before its
    features load, keeping the cut ids.

    With `targets=False` (decoding) every cut with features is in the batch, whatever its
    text: the batch has no targets, "unspellable" lists the ids whose text the tokenizer
    cannot write (or that have none), and only cuts whose features cannot be loaded are
    "skipped".

    `aux_encode` (text -> unit ids, e.g. `ds2.text.pinyin.encode_pinyin`) adds the targets of an
    auxiliary CTC head: "aux_targets" and "aux_target_lens".
    """

    def __init__(self, tokenizer: Tokenizer, augment=None, targets: bool = True, cut_transforms=(),
                 aux_encode=None):
        self.tokenizer = tokenizer
        self.augment = augment
        self.targets = targets
        self.cut_transforms = list(cut_transforms)
        self.aux_encode = aux_encode

    def __getitem__(self, cuts: CutSet) -> dict:
        for transform in self.cut_transforms:
            cuts = transform(cuts)
        feats, targets, aux, ids, texts, skipped, unspellable = [], [], [], [], [], [], []
        for cut in cuts:
            text = " ".join(s.text for s in cut.supervisions if s.text)
            try:
                tokens = self.tokenizer.encode(text)
            except ValueError:
                tokens = None
            if not tokens:
                reason = "empty transcript" if not text.strip() else "unmappable transcript"
                if self.targets:
                    skipped.append((cut.id, reason))
                    continue
                unspellable.append((cut.id, reason))
            try:
                x = torch.from_numpy(cut.load_features())
            except Exception as e:  # noqa: BLE001 - reported and skipped, never fatal
                skipped.append((cut.id, f"unreadable features ({type(e).__name__}: {e})"))
                continue
            feats.append(x)
            if self.targets:
                targets.append(torch.tensor(tokens, dtype=torch.int32))
                if self.aux_encode is not None:
                    aux.append(torch.tensor(self.aux_encode(text.replace(" ", "")), dtype=torch.int32))
            ids.append(cut.id)
            texts.append(text)
        if not feats:
            return {"cut_ids": [], "texts": [], "skipped": skipped, "unspellable": unspellable}
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        padded = pad_sequence(feats, batch_first=True)
        if self.augment is not None:
            padded = self.augment(padded)
        batch = {
            "features": padded,
            "feature_lens": lengths,
            "cut_ids": ids,
            "texts": texts,
            "skipped": skipped,
            "unspellable": unspellable,
        }
        if self.targets:
            batch["targets"] = torch.cat(targets)
            batch["target_lens"] = torch.tensor([len(t) for t in targets], dtype=torch.int64)
            if self.aux_encode is not None:
                batch["aux_targets"] = torch.cat(aux)
                batch["aux_target_lens"] = torch.tensor([len(t) for t in aux], dtype=torch.int64)
        return batch
