"""Checkpoint averaging, as icefall and ESPnet do it: the mean of the last N epochs' weights.

Entry point: `ds2 average exp/ds2 --num 2 --dev-cuts data/fbank/synth_cuts_dev.jsonl.gz`.
The average is kept as `checkpoints/averaged.pt`, which decoding then uses instead of
best.pt, only when its greedy dev CER is lower than best.pt's. The CER is validation's
(ds2.train.evaluate), on the dev cuts training can use, so it is the one `ds2 decode
--method greedy` gives for the same checkpoint in the same precision.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lhotse import CutSet

from ds2.atomic import save_atomic, write_text_atomic
from ds2.checkpoint import epoch_checkpoints, load_checkpoint, model_from_checkpoint
from ds2.files import AVERAGE_REPORT, AVERAGED, BEST, checkpoint_dir
from ds2.data.filter import filter_trainable
from ds2.precision import inference_device, resolve_dtype
from ds2.train.evaluate import dev_summary, evaluate

log = logging.getLogger(__name__)


def average_checkpoints(paths: list[Path]) -> dict:
    """The last checkpoint of `paths` with its model weights replaced by the mean over all of
    them (floating-point tensors; counters such as num_batches_tracked stay the last's)."""
    if not paths:
        raise ValueError("no checkpoints to average")
    ckpts = [load_checkpoint(p) for p in paths]
    avg = dict(ckpts[-1]["model"])
    for name, value in avg.items():
        if value.is_floating_point():
            avg[name] = sum(c["model"][name].double() for c in ckpts).div(len(ckpts)).to(value.dtype)
    out = {k: v for k, v in ckpts[-1].items() if k not in ("optimizer", "scheduler", "scaler", "rng")}
    out["model"] = avg
    out["averaged"] = [p.name for p in paths]
    return out


def dev_cer(ckpt: dict, cuts: CutSet, dtype: str) -> float:
    """Greedy CER of a checkpoint on the cuts of `cuts` training can use, in `dtype` on the device
    decoding uses (`inference_device`: a GPU if there is one, else the CPU)."""
    model, tokenizer, _ = model_from_checkpoint(ckpt)
    usable = filter_trainable(cuts, tokenizer, model, "dev", require_some=True)
    device = inference_device()
    r = evaluate(model.to(device), usable, tokenizer, device, dtype)
    return dev_summary([r.loss, r.tokens, r.char_errors, r.ref_chars])[1]  # stops when no cut could be read


def average_and_choose(exp_dir: str | Path, num: int, dev_cuts: str | Path) -> dict:
    """Average the last `num` epoch checkpoints; keep the average as checkpoints/averaged.pt
    if its dev CER beats best.pt's, else remove any older averaged.pt. Returns what was found,
    which is also written to checkpoints/averaged.json."""
    exp_dir = Path(exp_dir)
    ckpt_dir = checkpoint_dir(exp_dir)
    epochs = epoch_checkpoints(ckpt_dir)
    if len(epochs) < num:
        raise ValueError(f"{exp_dir} has {len(epochs)} epoch checkpoints; cannot average the last {num}")
    averaged = average_checkpoints(epochs[-num:])
    # the precision `auto` picks on this device, not the trained one: a model trained in bfloat16 on a
    # GPU is evaluated in float32 on a CPU that only emulates bfloat16 (about 100x slower)
    device = inference_device()
    dtype, reason = resolve_dtype("auto", device)
    log.info("evaluating on %s in %s (%s)", "the CPU" if device.type == "cpu" else device, dtype, reason)
    cuts = CutSet.from_file(dev_cuts).to_eager()
    report = {"averaged": averaged["averaged"], "dev_cer_averaged": dev_cer(averaged, cuts, dtype),
              "dev_cer_best": dev_cer(load_checkpoint(ckpt_dir / BEST), cuts, dtype)}
    report["chosen"] = AVERAGED if report["dev_cer_averaged"] < report["dev_cer_best"] else BEST
    if report["chosen"] == AVERAGED:
        save_atomic(averaged, ckpt_dir / AVERAGED)
    else:
        (ckpt_dir / AVERAGED).unlink(missing_ok=True)
    write_text_atomic(ckpt_dir / AVERAGE_REPORT, json.dumps(report, indent=1) + "\n")
    log.info("dev CER: average of %s %.2f%%, best.pt %.2f%%: decoding uses %s", ", ".join(averaged["averaged"]),
             100 * report["dev_cer_averaged"], 100 * report["dev_cer_best"], report["chosen"])
    return report
