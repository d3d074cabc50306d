"""Decode a cut set with a trained checkpoint and write the scored decoding folder.

The acoustic model runs once per set: its log-probs are kept in
`exp/<tag>/logprobs/<set>.pt`, with the SHA-256 digests of the cuts file and of the
checkpoint they came from, and every method (and `ds2 tune`) reads them from there while
both digests still match.

Every cut is decoded, whatever its text: a reference the tokenizer cannot spell is scored as
written (the words it cannot spell count as errors), and a cut whose features cannot be
loaded is scored as deleting every word of its reference. wer.txt says how many of each.

Beside wer.txt, `result.json` says the same as data (set, method, checkpoint, settings,
counts); `ds2 results` reads set and method from it, never from the folder's name, since set
names such as `test_clean` hold the `_` the folder name `decode_<set>_<method>` is joined by.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ds2.atomic import save_atomic, write_text_atomic
from ds2.data.dataset import AsrDataset
from ds2.data.filter import read_cut_set
from ds2.data.sampler import make_eval_sampler
from ds2.decode.methods import DecodeOptions, decode_many, describe, settings
from ds2.precision import DTYPES, inference_device, resolve_dtype
from ds2.progress import progress
from ds2.homophones import describe as describe_homophones, homophone_counts
from ds2.lm.ngram import lm_unit
from ds2.score import RESULT_FILE, ErrorRate, primary_rate, write_decode_dir
from ds2.text import Tokenizer, tokenizer_from_dict
from ds2.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bumped when the cache's content changes meaning


class LogProbs:
    """One set's acoustic model output: ids, reference texts, durations and (T, V) log-probs
    of the decoded cuts; `undecodable` maps the ids of cuts without loadable features to
    (reference text, reason), and `unspellable` lists the decoded ids whose reference the
    tokenizer cannot spell. `digests` are the SHA-256 of the cuts file and the checkpoint."""

    def __init__(self, ids: list[str], texts: list[str], durations: list[float],
                 log_probs: list[np.ndarray], tokenizer: Tokenizer, checkpoint: str,
                 undecodable: dict[str, tuple[str, str]] | None = None, unspellable: list[str] | None = None,
                 digests: dict[str, str] | None = None):
        self.ids, self.texts, self.durations = ids, texts, durations
        self.log_probs, self.tokenizer, self.checkpoint = log_probs, tokenizer, checkpoint
        self.undecodable = dict(undecodable or {})
        self.unspellable = list(unspellable or [])
        self.digests = dict(digests or {})

    @property
    def refs(self) -> dict[str, str]:
        """Reference texts of every cut of the set, decoded or not."""
        return {**dict(zip(self.ids, self.texts)), **{uid: text for uid, (text, _) in self.undecodable.items()}}

    def hyps(self, texts: list[str]) -> dict[str, str]:
        """Hypotheses keyed by id for every cut: `texts` of the decoded cuts (in `ids` order) and
        the empty hypothesis (all deletions) for the undecodable ones."""
        return {**dict(zip(self.ids, texts)), **{uid: "" for uid in self.undecodable}}

    @property
    def audio_seconds(self) -> float:
        return float(sum(self.durations))

    def summary(self) -> str:
        """The line of wer.txt that says what was decoded and how the rest was scored."""
        n = len(self.ids) + len(self.undecodable)
        line = (f"# cuts: {n}, decoded: {len(self.ids)}; references the tokenizer cannot spell: "
                f"{len(self.unspellable)} (scored as written, their unspellable words count as errors); "
                f"cuts that could not be decoded: {len(self.undecodable)} (unreadable features, scored as "
                f"deleting every reference word)")
        if self.unspellable:
            line += "\n# unspellable references: " + " ".join(self.unspellable)
        if self.undecodable:
            line += "\n# not decoded: " + " ".join(self.undecodable)
        return line

    def save(self, path: Path):
        save_atomic({"version": CACHE_VERSION, "ids": self.ids, "texts": self.texts, "durations": self.durations,
                    "log_probs": [torch.from_numpy(lp) for lp in self.log_probs],
                    "tokenizer": self.tokenizer.to_dict(), "checkpoint": self.checkpoint,
                    "undecodable": {uid: list(v) for uid, v in self.undecodable.items()},
                    "unspellable": self.unspellable, "digests": self.digests}, path)

    @classmethod
    def load(cls, path: Path) -> "LogProbs":
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=True))

    @classmethod
    def from_dict(cls, d: dict) -> "LogProbs":
        return cls(d["ids"], d["texts"], d["durations"], [lp.numpy() for lp in d["log_probs"]],
                   tokenizer_from_dict(d["tokenizer"]), d["checkpoint"],
                   {uid: tuple(v) for uid, v in d.get("undecodable", {}).items()}, d.get("unspellable", []),
                   d.get("digests", {}))


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (what the log-prob cache is keyed by)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cached(cache: Path, digests: dict[str, str]) -> LogProbs | None:
    """The cached log-probs when they came from the same cuts file and checkpoint bytes."""
    if not cache.is_file():
        return None
    try:
        d = torch.load(cache, map_location="cpu", weights_only=True)
        if d.get("version") != CACHE_VERSION or d.get("digests") != digests:
            return None
        return LogProbs.from_dict(d)
    except Exception as e:  # noqa: BLE001 - a stale or broken cache is recomputed, never trusted
        log.warning("ignoring %s (%s: %s)", cache, type(e).__name__, e)
        return None


def compute_log_probs(exp_dir: str | Path, cuts_path: str | Path, set_name: str,
                      checkpoint: str | Path | None = None, max_duration: float = 300.0) -> LogProbs:
    """The set's log-probs, from `exp_dir/logprobs/<set>.pt` when that was computed from the same
    bytes of the cuts file and of the checkpoint (their SHA-256 digests match), else computed now.

    Every cut with features is decoded; those whose features cannot be loaded are listed in
    `undecodable` (and scored as all deletions)."""
    exp_dir = Path(exp_dir)
    ckpt_path = find_checkpoint(checkpoint or exp_dir)
    digests = {"cuts": file_digest(cuts_path), "checkpoint": file_digest(ckpt_path)}
    cache = exp_dir / "logprobs" / f"{set_name}.pt"
    cached = _cached(cache, digests)
    if cached is not None:
        log.info("%s: log-probs from %s (same cuts file and checkpoint)", set_name, cache)
        _report(cached, set_name)
        return _some_decoded(cached, set_name, cuts_path)
    model, tokenizer, cfg = model_from_checkpoint(load_checkpoint(ckpt_path))
    device = inference_device()
    model.to(device)
    dtype_name, why = resolve_dtype("auto", device)
    log.info("decoding in %s (%s; trained in %s) on %s", dtype_name, why, cfg.train.dtype,
             "the CPU" if device.type == "cpu" else device)
    dtype = DTYPES[dtype_name]
    try:
        cuts = read_cut_set(cuts_path)
    except ValueError as e:
        raise ValueError(f"{set_name}: {e}") from None
    loader = torch.utils.data.DataLoader(AsrDataset(tokenizer, targets=False),
                                         sampler=make_eval_sampler(cuts, max_duration),
                                         batch_size=None, num_workers=0)
    ids, texts, durations, log_probs, unspellable, undecodable = [], [], [], [], [], {}
    with torch.no_grad():
        for batch in progress(loader, desc=f"acoustic model on {set_name}", unit="batch"):
            for uid, reason in batch["skipped"]:
                cut = cuts[uid]
                undecodable[uid] = (" ".join(s.text for s in cut.supervisions if s.text), reason)
            unspellable += [uid for uid, _ in batch["unspellable"]]
            if not batch["cut_ids"]:
                continue
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                out, out_lens = model(batch["features"].to(device), batch["feature_lens"].to(device))
            out, out_lens = out.float().cpu(), out_lens.cpu()
            for i, uid in enumerate(batch["cut_ids"]):
                ids.append(uid)
                texts.append(batch["texts"][i])
                durations.append(cuts[uid].duration)
                log_probs.append(out[i, : out_lens[i]].numpy().copy())
    covered = set(ids) | set(undecodable)
    for cut in cuts:  # a cut the sampler left out would otherwise vanish from the score
        if cut.id not in covered:
            undecodable[cut.id] = (" ".join(s.text for s in cut.supervisions if s.text), "left out by the sampler")
    result = LogProbs(ids, texts, durations, log_probs, tokenizer, str(ckpt_path), undecodable, unspellable,
                      digests)
    _report(result, set_name)
    _some_decoded(result, set_name, cuts_path)
    result.save(cache)
    return result


def _some_decoded(lp: LogProbs, set_name: str, cuts_path) -> LogProbs:
    """`lp`, unless not one of its cuts could be decoded: then ValueError (one line, the first
    reason), never a score of deletions only or weights tuned on nothing."""
    if lp.ids:
        return lp
    uid, (_, reason) = next(iter(lp.undecodable.items()))
    raise ValueError(f"{set_name}: none of the {len(lp.undecodable)} cuts of {cuts_path} could be decoded "
                     f"(e.g. {uid}: {reason}); were the features moved or deleted? run `ds2 features` again")


def _report(lp: LogProbs, set_name: str):
    """Name and count, in the log, the cuts that are not scored like the others."""
    for uid, (_, reason) in lp.undecodable.items():
        log.warning("%s: cannot decode %s (%s): scored as deleting every reference word", set_name, uid, reason)
    if lp.undecodable:
        log.warning("%s: %d of %d cuts could not be decoded (named above); each counts as deleting its "
                    "whole reference", set_name, len(lp.undecodable), len(lp.ids) + len(lp.undecodable))
    if lp.unspellable:
        log.warning("%s: %d cuts have a reference the tokenizer cannot spell (scored as written): %s", set_name,
                    len(lp.unspellable), " ".join(lp.unspellable[:20]))


def decode_log_probs(lp: LogProbs, opts: DecodeOptions, num_jobs: int = 1) -> tuple[dict[str, str], float]:
    """Hypotheses keyed by id (empty for the undecodable cuts), and the search's real-time
    factor per core."""
    texts, cpu_seconds = decode_many(opts, lp.tokenizer, lp.log_probs, num_jobs) if lp.log_probs else ([], 0.0)
    return lp.hyps(texts), cpu_seconds / max(lp.audio_seconds, 1e-9)


def decode_cuts(exp_dir: str | Path, cuts_path: str | Path, set_name: str,
                opts: DecodeOptions = DecodeOptions(), checkpoint: str | Path | None = None,
                max_duration: float = 300.0, num_jobs: int = 1,
                weights_from: list[str | Path] = (), name: str | None = None) -> tuple[ErrorRate, ErrorRate, Path]:
    """Decode `cuts_path` with the experiment's checkpoint (or `checkpoint`) and `opts.method`.

    Writes `exp_dir/decode_<set_name>_<name>/{recogs,errs,wer}.txt` and `result.json`
    (`weights_from`: the tuned-weight files the options came from, recorded there) and returns
    (%WER, %CER, that folder). `name` (default: the method) tells apart decodings of one method
    with other resources, e.g. hlg over a word LM's graph as hlg-word.
    """
    name = name or opts.method
    exp_dir = Path(exp_dir)
    lp = compute_log_probs(exp_dir, cuts_path, set_name, checkpoint, max_duration)
    start = time.time()
    hyps, rtf = decode_log_probs(lp, opts, num_jobs)
    log.info("%s %s: searched %d utterances in %.1f s (RTF %.4f per core)",
             set_name, name, len(hyps), time.time() - start, rtf)
    out_dir = decode_dir(exp_dir, set_name, name)
    wer, cer = write_result(out_dir, set_name, lp, hyps, opts, rtf, weights_from, name)
    log.info("%s %s: %s, %s", set_name, name, *((cer.line("CER"), wer.line("WER"))
             if primary_rate(lm_unit(lp.tokenizer)) == "CER" else (wer.line("WER"), cer.line("CER"))))
    return wer, cer, out_dir


def decode_dir(exp_dir: str | Path, set_name: str, name: str) -> Path:
    """The folder of one decoding: EXP/decode_<set>_<name> (the method's name unless named otherwise;
    read back by its result.json)."""
    return Path(exp_dir) / f"decode_{set_name}_{name}"


def write_result(out_dir: str | Path, set_name: str, lp: LogProbs, hyps: dict[str, str], opts: DecodeOptions,
                 rtf: float, weights_from: list[str | Path] = (), name: str | None = None
                 ) -> tuple[ErrorRate, ErrorRate]:
    """Score `hyps` against `lp`'s references into `out_dir`: recogs.txt, errs.txt, wer.txt (its
    header: set, name, checkpoint, utterances, RTF, the method's settings, and the `# cuts:`
    summary) and result.json (the same as data). Returns (%WER, %CER)."""
    out_dir = Path(out_dir)
    name = name or opts.method
    header = (f"# {set_name} {name} checkpoint={Path(lp.checkpoint).name} utterances={len(hyps)} "
              f"RTF={rtf:.4f} {describe(opts)}").rstrip()
    unit = lm_unit(lp.tokenizer)
    homophones = homophone_counts(lp.refs, hyps) if unit == "char" else None  # what limits a Mandarin model
    if homophones:
        header += "\n# " + describe_homophones(homophones)
    wer, cer = write_decode_dir(out_dir, lp.refs, hyps, header + "\n" + lp.summary(), unit)
    record = {
        "set": set_name,
        "method": opts.method,
        "name": name,  # the decoding's name: the method's, or one given (`ds2 decode --name`)
        "primary": primary_rate(unit),  # the rate that ranks decodings: CER for text without spaces
        "checkpoint": str(lp.checkpoint),
        "utterances": len(hyps),
        "rtf": round(rtf, 6),  # search seconds per audio second, per core (acoustic model excluded)
        "settings": settings(opts),
        "weights_from": [str(p) for p in weights_from],
        "cuts": {"total": len(lp.ids) + len(lp.undecodable), "decoded": len(lp.ids),
                 "unspellable": len(lp.unspellable), "undecodable": len(lp.undecodable),
                 "summary": lp.summary()},
        "WER": _counts(wer),
        "CER": _counts(cer),
        **({"homophones": homophones} if homophones else {}),
    }
    write_text_atomic(out_dir / RESULT_FILE, json.dumps(record, indent=1) + "\n")
    return wer, cer


def _counts(rate: ErrorRate) -> dict:
    return {"rate": round(rate.rate, 4), "errors": rate.errors, "ref": rate.ref, "ins": rate.ins,
            "del": rate.dels, "sub": rate.sub}
