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
    loss = F.ctc_loss(log_probs.transpose(0, 1).float(), batch["targets"].to(device), out_lens,
                      batch["target_lens"].to(device), blank=0, reduction="sum", zero_infinity=True)
    return loss, int(batch["target_lens"].sum()), log_probs, out_lens
