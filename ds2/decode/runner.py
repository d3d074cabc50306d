"""Decode a cut set with a trained checkpoint and write the scored decoding folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from lhotse import CutSet
from tqdm import tqdm

from ds2.data.dataset import AsrDataset
from ds2.data.sampler import make_eval_sampler
from ds2.decode.greedy import greedy_decode
from ds2.score import ErrorRate, write_decode_dir
from ds2.train.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
from ds2.train.trainer import DTYPES

log = logging.getLogger(__name__)

METHODS = ("greedy",)


def decode_cuts(exp_dir: str | Path, cuts_path: str | Path, set_name: str, method: str = "greedy",
                checkpoint: str | Path | None = None, max_duration: float = 300.0) -> tuple[ErrorRate, ErrorRate, Path]:
    """Decode `cuts_path` with the experiment's best checkpoint (or `checkpoint`).

    Writes `exp_dir/decode_<set_name>_<method>/{recogs,errs,wer}.txt` and returns
    (%WER, %CER, that folder).
    """
    if method not in METHODS:
        raise ValueError(f"unknown decoding method {method!r}; choose from {', '.join(METHODS)}")
    exp_dir = Path(exp_dir)
    ckpt_path = find_checkpoint(checkpoint or exp_dir)
    model, tokenizer, cfg = model_from_checkpoint(load_checkpoint(ckpt_path))
    dtype = DTYPES[cfg.train.dtype]  # decode in the precision the model was trained in
    cuts = CutSet.from_file(cuts_path).to_eager()
    dataset = AsrDataset(tokenizer)
    refs, hyps = {}, {}
    audio_seconds, start = 0.0, time.time()
    sampler = make_eval_sampler(cuts, max_duration)
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
    with torch.no_grad():
        for batch in tqdm(loader, desc=f"decoding {set_name}", unit="batch"):
            if not batch["cut_ids"]:
                continue
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                log_probs, out_lens = model(batch["features"], batch["feature_lens"])
            for uid, ref, hyp in zip(batch["cut_ids"], batch["texts"],
                                     greedy_decode(log_probs, out_lens, tokenizer)):
                refs[uid], hyps[uid] = ref, hyp
            audio_seconds += sum(cuts[uid].duration for uid in batch["cut_ids"])
    elapsed = time.time() - start
    skipped = len(cuts) - len(refs)
    if skipped:
        log.warning("%d cuts of %s could not be decoded (see warnings above)", skipped, set_name)
    out_dir = exp_dir / f"decode_{set_name}_{method}"
    header = f"# {set_name} {method} checkpoint={ckpt_path.name} utterances={len(refs)} RTF={elapsed / max(audio_seconds, 1e-9):.4f}"
    wer, cer = write_decode_dir(out_dir, refs, hyps, header)
    log.info("%s %s: %s, %s", set_name, method, wer.line("WER"), cer.line("CER"))
    return wer, cer, out_dir
