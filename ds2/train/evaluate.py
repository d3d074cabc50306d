"""Evaluation on dev: the CTC loss and the greedy CER of a model, as validation (every epoch of
`ds2 train`) and `ds2 average` (average against best.pt) measure them.

The CER is the one of `ds2 decode --method greedy`: the same batches (`make_eval_sampler` with
EVAL_MAX_DURATION seconds a batch), the same greedy decode (`ds2.decode.greedy.greedy_decode`)
and the same character errors (`ds2.score.char_errors`, spaces not counted). On the same cuts,
precision and checkpoint, the errors and reference characters are the same integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from lhotse import CutSet

from ds2.data.dataset import AsrDataset
from ds2.data import EVAL_MAX_DURATION
from ds2.data.sampler import make_eval_sampler
from ds2.decode.greedy import greedy_decode
from ds2.score import char_errors
from ds2.text import Tokenizer
from ds2.train.errors import TrainingStopped
from ds2.train.loss import compute_loss

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Sums over the evaluated cuts (of one rank, under DDP: the trainer adds them up)."""

    loss: float = 0.0  # summed CTC loss
    tokens: int = 0  # reference tokens
    char_errors: int = 0  # greedy character errors (ins + del + sub)
    ref_chars: int = 0  # reference characters (spaces not counted)

    @property
    def loss_per_token(self) -> float:
        return self.loss / max(1, self.tokens)

    @property
    def cer(self) -> float:
        """Character error rate as a fraction (not percent)."""
        return self.char_errors / max(1, self.ref_chars)


@torch.no_grad()
def evaluate(model, cuts: CutSet, tokenizer: Tokenizer, device: torch.device, dtype: str = "float32",
             world_size: int = 1, rank: int = 0, max_duration: float = EVAL_MAX_DURATION) -> Evaluation:
    """Loss and greedy character errors of `model`, in eval mode, on `cuts` (this rank's share of
    their batches). `cuts` should be ones training can use (ds2.data.filter.filter_trainable):
    the loss needs a transcript the tokenizer spells; a cut without one is left out."""
    model.eval()
    result = Evaluation()
    loader = torch.utils.data.DataLoader(AsrDataset(tokenizer), sampler=make_eval_sampler(cuts, max_duration,
                                                                                           world_size, rank),
                                         batch_size=None, num_workers=0,
                                         generator=torch.Generator())  # leaves the global RNG alone
    for batch in loader:
        for cut_id, reason in batch["skipped"]:
            log.warning("dev: cannot evaluate %s (%s)", cut_id, reason)
        if not batch["cut_ids"]:
            continue
        loss, tokens, log_probs, out_lens = compute_loss(model, batch, device, dtype)
        result.loss += loss.item()
        result.tokens += tokens
        for ref, hyp in zip(batch["texts"], greedy_decode(log_probs.float(), out_lens, tokenizer)):
            counts = char_errors(ref, hyp)
            result.char_errors += counts["errors"]
            result.ref_chars += counts["ref"]
    return result


def dev_summary(sums) -> tuple[float, float, int, int]:
    """(loss per token, CER, character errors, reference characters) from the sums of loss, tokens,
    character errors and reference characters over every rank's share of dev. TrainingStopped
    when not one dev cut could be evaluated (their features unreadable): never a CER of 0 / 0."""
    loss, tokens, errors, chars = sums
    if not chars:
        raise TrainingStopped("dev: not one cut could be evaluated (their features cannot be read: see the log); "
                              "run `ds2 features` again for the dev set")
    return loss / max(1.0, tokens), errors / max(1.0, chars), int(errors), int(chars)
