"""Decode a cut set with a trained checkpoint and write the scored decoding folder.

The acoustic model runs once per set: its log-probs are kept in
`exp/<tag>/logprobs/<set>.pt` and every method (and `ds2 tune`) reads them from there.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from tqdm import tqdm

from ds2.data.dataset import AsrDataset
from ds2.data.sampler import make_eval_sampler
from ds2.decode.methods import DecodeOptions, decode_many
from ds2.score import ErrorRate, write_decode_dir
from ds2.text import Tokenizer, tokenizer_from_dict
from ds2.train.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
from ds2.train.trainer import DTYPES

log = logging.getLogger(__name__)


class LogProbs:
    """One set's acoustic model output: ids, reference texts, durations and (T, V) log-probs."""

    def __init__(self, ids: list[str], texts: list[str], durations: list[float],
                 log_probs: list[np.ndarray], tokenizer: Tokenizer, checkpoint: str):
        self.ids, self.texts, self.durations = ids, texts, durations
        self.log_probs, self.tokenizer, self.checkpoint = log_probs, tokenizer, checkpoint

    @property
    def refs(self) -> dict[str, str]:
        return dict(zip(self.ids, self.texts))

    @property
    def audio_seconds(self) -> float:
        return float(sum(self.durations))

    def save(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"ids": self.ids, "texts": self.texts, "durations": self.durations,
                    "log_probs": [torch.from_numpy(lp) for lp in self.log_probs],
                    "tokenizer": self.tokenizer.to_dict(), "checkpoint": self.checkpoint}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "LogProbs":
        d = torch.load(path, map_location="cpu", weights_only=True)
        return cls(d["ids"], d["texts"], d["durations"], [lp.numpy() for lp in d["log_probs"]],
                   tokenizer_from_dict(d["tokenizer"]), d["checkpoint"])


def compute_log_probs(exp_dir: str | Path, cuts_path: str | Path, set_name: str,
                      checkpoint: str | Path | None = None, max_duration: float = 300.0) -> LogProbs:
    """The set's log-probs, from `exp_dir/logprobs/<set>.pt` when newer than the checkpoint and cuts."""
    exp_dir = Path(exp_dir)
    ckpt_path = find_checkpoint(checkpoint or exp_dir)
    cache = exp_dir / "logprobs" / f"{set_name}.pt"
    if cache.is_file() and cache.stat().st_mtime >= max(ckpt_path.stat().st_mtime, Path(cuts_path).stat().st_mtime):
        cached = LogProbs.load(cache)
        if cached.checkpoint == str(ckpt_path):
            return cached
    model, tokenizer, cfg = model_from_checkpoint(load_checkpoint(ckpt_path))
    dtype = DTYPES[cfg.train.dtype]  # decode in the precision the model was trained in
    cuts = CutSet.from_file(cuts_path).to_eager()
    loader = torch.utils.data.DataLoader(AsrDataset(tokenizer), sampler=make_eval_sampler(cuts, max_duration),
                                         batch_size=None, num_workers=0)
    ids, texts, durations, log_probs = [], [], [], []
    with torch.no_grad():
        for batch in tqdm(loader, desc=f"acoustic model on {set_name}", unit="batch"):
            for uid, reason in batch["skipped"]:
                log.warning("%s: cannot decode %s: %s", set_name, uid, reason)
            if not batch["cut_ids"]:
                continue
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                out, out_lens = model(batch["features"], batch["feature_lens"])
            out = out.float()
            for i, uid in enumerate(batch["cut_ids"]):
                ids.append(uid)
                texts.append(batch["texts"][i])
                durations.append(cuts[uid].duration)
                log_probs.append(out[i, : out_lens[i]].numpy().copy())
    skipped = len(cuts) - len(ids)
    if skipped:
        log.warning("%d cuts of %s could not be decoded (named above)", skipped, set_name)
    result = LogProbs(ids, texts, durations, log_probs, tokenizer, str(ckpt_path))
    result.save(cache)
    return result


def decode_log_probs(lp: LogProbs, opts: DecodeOptions, num_jobs: int = 1) -> tuple[dict[str, str], float]:
    """Hypotheses keyed by id, and the search's real-time factor per core."""
    texts, cpu_seconds = decode_many(opts, lp.tokenizer, lp.log_probs, num_jobs)
    return dict(zip(lp.ids, texts)), cpu_seconds / max(lp.audio_seconds, 1e-9)


def decode_cuts(exp_dir: str | Path, cuts_path: str | Path, set_name: str,
                opts: DecodeOptions = DecodeOptions(), checkpoint: str | Path | None = None,
                max_duration: float = 300.0, num_jobs: int = 1) -> tuple[ErrorRate, ErrorRate, Path]:
    """Decode `cuts_path` with the experiment's best checkpoint (or `checkpoint`) and `opts.method`.

    Writes `exp_dir/decode_<set_name>_<method>/{recogs,errs,wer}.txt` and returns
    (%WER, %CER, that folder).
    """
    exp_dir = Path(exp_dir)
    lp = compute_log_probs(exp_dir, cuts_path, set_name, checkpoint, max_duration)
    start = time.time()
    hyps, rtf = decode_log_probs(lp, opts, num_jobs)
    log.info("%s %s: searched %d utterances in %.1f s (RTF %.4f per core)",
             set_name, opts.method, len(hyps), time.time() - start, rtf)
    out_dir = exp_dir / f"decode_{set_name}_{opts.method}"
    header = (f"# {set_name} {opts.method} checkpoint={Path(lp.checkpoint).name} utterances={len(hyps)} "
              f"RTF={rtf:.4f} {describe(opts)}")
    wer, cer = write_decode_dir(out_dir, lp.refs, hyps, header.rstrip())
    log.info("%s %s: %s, %s", set_name, opts.method, wer.line("WER"), cer.line("CER"))
    return wer, cer, out_dir


def describe(opts: DecodeOptions) -> str:
    """The options that matter for `opts.method`, for the header of wer.txt and RESULTS.md."""
    keys = {"beam": ["lm", "beam", "alpha", "beta"],
            "nbest-rescore": ["lm", "rescore_lm", "beam", "nbest", "alpha", "beta"],
            "ctc-graph": ["lang_dir", "graph_beam"],
            "hlg": ["lang_dir", "graph_beam", "lm_scale"]}.get(opts.method, [])
    return " ".join(f"{k}={getattr(opts, k)}" for k in keys)
