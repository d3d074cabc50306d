"""The CTC loss of a batch, shared by the training step, validation and the benchmarks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ds2.precision import DTYPES


def compute_loss(model, batch: dict, device: torch.device, dtype: str = "float32"):
    """Summed CTC loss of a batch (of `ds2.data.dataset.AsrDataset`), its token count, and the
    model outputs (log-probs (B, T, V) and their lengths).

    The model runs under autocast in `dtype`; the CTC loss is always computed in float32.
    """
    if dtype not in DTYPES:  # "auto" is resolved by the caller, once (ds2.precision.resolve_dtype)
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    feats = batch["features"].to(device)
    with torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "float32"):
        log_probs, out_lens = model(feats, batch["feature_lens"].to(device))
    loss = _ctc(log_probs, out_lens, batch["targets"], batch["target_lens"], device)
    return loss, int(batch["target_lens"].sum()), log_probs, out_lens


def _ctc(log_probs, out_lens, targets, target_lens, device):
    return F.ctc_loss(log_probs.transpose(0, 1).float(), targets.to(device), out_lens, target_lens.to(device),
                      blank=0, reduction="sum", zero_infinity=True)


def compute_training_loss(model, batch: dict, device: torch.device, dtype: str = "float32", aux_weight: float = 0.0):
    """(the loss the training step minimises, its CTC loss of the tokens alone as a float, the token
    count): `compute_loss`'s CTC loss, plus `aux_weight` times the auxiliary head's CTC loss (summed
    over the batch too) when the batch has auxiliary targets (`AsrDataset(aux_encode=...)`) and the
    weight is above 0. The tokens' loss is what the training reports, comparable with the dev loss."""
    if not aux_weight or "aux_targets" not in batch:
        loss, tokens, _, _ = compute_loss(model, batch, device, dtype)
        return loss, loss.item(), tokens
    feats = batch["features"].to(device)
    with torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "float32"):
        log_probs, out_lens, aux_log_probs = model(feats, batch["feature_lens"].to(device), aux=True)
    loss = _ctc(log_probs, out_lens, batch["targets"], batch["target_lens"], device)
    aux = _ctc(aux_log_probs, out_lens, batch["aux_targets"], batch["aux_target_lens"], device)
    return loss + aux_weight * aux, loss.item(), int(batch["target_lens"].sum())
