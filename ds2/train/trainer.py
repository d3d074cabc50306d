"""The training loop: `compute_loss`, `train_one_epoch`, `validate`, `save_checkpoint`, `run`.

Entry point: `ds2 train --config conf/ds2.yaml --exp-dir exp/ds2 ...` (see `ds2 train --help`).
Under `torchrun` it reads RANK/WORLD_SIZE, trains with DistributedDataParallel and only
rank 0 writes.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lhotse import CutSet
from tqdm import tqdm

from ds2.atomic import save_atomic
from ds2.data.augment import Chain, FrequencyWarp
from ds2.data.dataset import AsrDataset
from ds2.data.sampler import SkipFirst, bucket_count, make_eval_sampler, make_train_sampler
from ds2.data.shar import is_shar_dir, load_rank_shards
from ds2.decode.greedy import greedy_decode
from ds2.model import DeepSpeech2
from ds2.precision import DTYPES, resolve_dtype
from ds2.score import error_counts
from ds2.text import Tokenizer
from ds2.checkpoint import CheckpointError, load_checkpoint
from ds2.config import ExperimentConfig, config_from_dict, config_to_dict, save_config
from ds2.train.plot import plot_curves

log = logging.getLogger("ds2.train")


@dataclass
class TrainData:
    """Paths of what training reads."""

    train_cuts: Path
    dev_cuts: Path
    stats: Path  # global feature mean/std written by the features stage


def ctc_label_frames(tokens: list[int]) -> int:
    """Fewest frames CTC needs for `tokens`: one per token plus a blank between repeats."""
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def filter_trainable(cuts: CutSet, tokenizer: Tokenizer, model: DeepSpeech2, split: str,
                     require_some: bool = False) -> CutSet:
    """Drop cuts with an empty or unmappable transcript, or too few output frames for their
    label sequence; log a count per reason and the ids. With `require_some`, no cut kept is
    a TrainingStopped that says how many were dropped and why."""
    dropped: dict[str, list[str]] = {"empty transcript": [], "unmappable transcript": [],
                                     "too short for its label sequence": []}
    kept = []
    for cut in cuts:
        text = " ".join(s.text for s in cut.supervisions if s.text).strip()
        if not text:
            dropped["empty transcript"].append(cut.id)
            continue
        try:
            tokens = tokenizer.encode(text)
        except ValueError:
            dropped["unmappable transcript"].append(cut.id)
            continue
        out_frames = int(model.output_lengths(torch.tensor([cut.num_frames]))[0])
        if out_frames < ctc_label_frames(tokens):
            dropped["too short for its label sequence"].append(cut.id)
            continue
        kept.append(cut)
    for reason, ids in dropped.items():
        if ids:
            log.warning("%s: dropped %d cuts (%s): %s%s", split, len(ids), reason, " ".join(ids[:10]),
                        " ..." if len(ids) > 10 else "")
    total = sum(len(ids) for ids in dropped.values()) + len(kept)
    log.info("%s: %d of %d cuts kept", split, len(kept), total)
    if require_some and not kept:
        raise TrainingStopped(no_cuts_message(split, total, dropped))
    return CutSet.from_cuts(kept)


def no_cuts_message(split: str, total: int, dropped: dict[str, list[str]]) -> str:
    """One line: no cut of `split` is left, how many were dropped for which reasons, what to check."""
    if total == 0:
        return f"{split}: the cut set is empty; nothing to {'train on' if split == 'train' else 'validate on'}"
    reasons = "; ".join(f"{len(ids)} {reason} (e.g. {ids[0]})" for reason, ids in dropped.items() if ids)
    hints = []
    if dropped.get("unmappable transcript"):
        hints.append("the transcripts use symbols the tokenizer of --lang-dir lacks (check their case and "
                     "normalisation against its tokens.txt)")
    if dropped.get("empty transcript"):
        hints.append("the supervisions have no text")
    if dropped.get("too short for its label sequence"):
        hints.append("the model's time stride (model.conv_strides) leaves fewer frames than the labels need")
    return (f"{split}: no cut is left {'to train on' if split == 'train' else 'to validate on'}: all {total} were "
            f"dropped ({reasons}): {'; '.join(hints)}")


def compute_loss(model, batch: dict, device: torch.device, dtype: str = "float32"):
    """Summed CTC loss of a batch, its token count, and the model outputs.

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


def lr_lambda(warmup: int, total: int, final_ratio: float):
    """Linear warm-up, then cosine decay to `final_ratio` of the peak at step `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class BatchSkipped(Exception):
    """A batch the loop leaves out (non-finite loss, out of memory); training goes on."""


class TrainingStopped(RuntimeError):
    """Training cannot go on; the message says what to change."""


class Trainer:
    """State of one training run; `run` builds it and calls the loop.

    Resumable at any step: a checkpoint holds the model, optimizer, LR scheduler, grad scaler,
    RNG states, the position in the epoch (batches trained, in the sampler's fixed order for
    the epoch) and the epoch's running loss, so a run killed mid-epoch and resumed ends with
    the parameters of an uninterrupted one.
    """

    def __init__(self, cfg: ExperimentConfig, data: TrainData, tokenizer: Tokenizer, exp_dir: Path,
                 rank: int = 0, world_size: int = 1, device: torch.device | None = None):
        self.cfg, self.data, self.tokenizer, self.exp_dir = cfg, data, tokenizer, Path(exp_dir)
        self.rank, self.world_size = rank, world_size
        self.device = device or torch.device("cpu")
        tc = cfg.train
        torch.manual_seed(tc.seed)
        random.seed(tc.seed)
        np.random.seed(tc.seed)

        # Shar shards: each rank reads its own (shard k -> rank k mod world size)
        self.rank_split = is_shar_dir(data.train_cuts)
        train_cuts = load_rank_shards(data.train_cuts, rank, world_size) if self.rank_split \
            else CutSet.from_file(data.train_cuts)
        dev_cuts = CutSet.from_file(data.dev_cuts)
        first = next(iter(train_cuts), None)
        if first is None:
            raise TrainingStopped(f"train: no cut in {data.train_cuts}; nothing to train on")
        self.num_features = first.num_features
        self.frame_shift = first.frame_shift
        try:
            stats = torch.load(data.stats, map_location="cpu", weights_only=True)
            stats["mean"], stats["std"]
        except Exception as e:
            raise TrainingStopped(f"--stats {data.stats} is not a feature mean/std file of `ds2 features` "
                                  f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from None
        self.model = DeepSpeech2(cfg.model, self.num_features, tokenizer.vocab_size)
        self.model.set_normalization(stats["mean"], stats["std"])
        self.model.to(self.device)
        # every rank reads all of train (or its shards) and dev, so an empty result is every rank's,
        # except for shards, whose ranks agree below before any of them stops
        self.train_cuts = filter_trainable(train_cuts, tokenizer, self.model, "train",
                                           require_some=not self.rank_split).to_eager()
        if self.rank_split and self.min_over_ranks(len(self.train_cuts)) == 0:
            raise TrainingStopped(f"train: no cut is left to train on for at least one rank (this rank, {rank}, "
                                  f"has {len(self.train_cuts)}): see the dropped cuts in the log, or use fewer shards")
        self.dev_cuts = filter_trainable(dev_cuts, tokenizer, self.model, "dev", require_some=True).to_eager()
        buckets = bucket_count(len(self.train_cuts), tc.num_buckets)
        if buckets < tc.num_buckets and (tc.epochs > 1 or not tc.sortagrad):  # bucketing is used
            log.warning("train.num_buckets %d is more than the %d training cuts allow (Lhotse's bucketing needs "
                        "at least 2 buckets and no more buckets than cuts): using %s", tc.num_buckets,
                        len(self.train_cuts), f"{buckets} buckets" if buckets > 1 else "one shuffled bucket")
        self.ddp_model = self.model
        if dist.is_available() and dist.is_initialized():
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model)

        # float16 needs loss scaling; for float32/bfloat16 the scaler is a pass-through.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.dtype == "float16")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        total_audio = sum(c.duration for c in self.train_cuts)
        self.steps_per_epoch = max(1, math.ceil(total_audio / (tc.max_duration * world_size)))
        if self.rank_split:  # every rank steps as often as the one with the least data
            self.steps_per_epoch = int(self.min_over_ranks(math.ceil(total_audio / tc.max_duration)))
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(tc.warmup_steps, self.total_steps, tc.final_lr_ratio))
        spec_augment = None
        if tc.spec_augment:
            from lhotse.dataset import SpecAugment

            spec_augment = SpecAugment(time_warp_factor=tc.time_warp or None, num_feature_masks=tc.freq_masks,
                                       features_mask_size=tc.freq_mask_size, num_frame_masks=tc.time_masks,
                                       frames_mask_size=tc.time_mask_size, max_frames_mask_fraction=0.2, p=0.9)
        freq_warp = FrequencyWarp(tc.freq_warp) if tc.freq_warp > 0 else None
        augment = Chain(freq_warp, spec_augment) if freq_warp or spec_augment else None
        self.train_set = AsrDataset(tokenizer, augment=augment)
        self.epoch, self.step = 0, 0
        self.batches_done = 0  # batches of the current epoch already trained (or skipped)
        self.epoch_loss = [0.0, 0]  # summed loss and tokens of the current epoch so far, over all ranks
        self.bad_cuts: dict[str, list[str]] = {}  # reason -> ids of cuts left out of batches
        self.bad_batches: dict[str, int] = {}  # reason -> batches skipped
        self.skipped_in_a_row = 0
        self.best_cer = float("inf")
        self.history = {"title": exp_dir.name, "steps": [], "epochs": []}
        self.tb = None
        if rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.exp_dir / "tensorboard"))
            log.info("model: %.2fM parameters, time stride %d", self.model.num_params() / 1e6,
                     cfg.model.time_stride)

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": config_to_dict(self.cfg),
            "tokenizer": self.tokenizer.to_dict(),
            "num_features": self.num_features,
            "frame_shift": self.frame_shift,
            "epoch": self.epoch,
            "step": self.step,
            "batches_done": self.batches_done,
            "epoch_loss": list(self.epoch_loss),
            "rng": rng_state(),
            "best_cer": self.best_cer,
            "history": json.dumps(self.history),
        }

    def save_checkpoint(self, name: str) -> None:
        if self.rank == 0:
            save_atomic(self.state(), self.exp_dir / "checkpoints" / name)

    def save_step_checkpoint(self) -> None:
        """checkpoints/step-N.pt, keeping the newest `keep_last_steps` of them."""
        if self.rank != 0:
            return
        self.save_checkpoint(f"step-{self.step}.pt")
        for old in step_checkpoints(self.exp_dir / "checkpoints")[: -max(1, self.cfg.train.keep_last_steps)]:
            old.unlink(missing_ok=True)

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.best_cer = ckpt["epoch"], ckpt["step"], ckpt["best_cer"]
        self.batches_done = ckpt.get("batches_done", 0)
        self.epoch_loss = list(ckpt.get("epoch_loss", [0.0, 0]))
        self.history = json.loads(ckpt["history"])
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])

    # -- the loop ------------------------------------------------------------------------
    def loader(self, sampler, dataset, workers: int):
        # its own generator: creating a DataLoader draws a seed, which must not move the global RNG
        # (a run resumed mid-epoch creates its loader at another point of the RNG's sequence)
        return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=workers,
                                           persistent_workers=False,
                                           generator=torch.Generator().manual_seed(self.cfg.train.seed + self.epoch))

    def train_one_epoch(self) -> float:
        tc = self.cfg.train
        self.model.train()
        sampler, stop = self.epoch_sampler(), None
        if self.rank_split:  # the ranks' own data: all stop after the fewest batches any rank has
            stop = int(self.min_over_ranks(sum(1 for _ in self.epoch_sampler())))
        if self.batches_done:
            log.info("epoch %d resumes after its first %d batches", self.epoch + 1, self.batches_done)
        bar = tqdm(self.loader(SkipFirst(sampler, self.batches_done, stop), self.train_set, tc.num_workers),
                   total=max(self.steps_per_epoch, self.batches_done), initial=self.batches_done,
                   desc=f"epoch {self.epoch + 1}/{tc.epochs}", unit="batch", disable=self.rank != 0,
                   dynamic_ncols=True)
        for batch in bar:
            self.batches_done += 1
            for cut_id, reason in batch["skipped"]:
                self.bad_cuts.setdefault(reason, []).append(cut_id)
                log.warning("skipped cut %s: %s", cut_id, reason)
            try:
                loss_value = self.train_step(batch)
                self.skipped_in_a_row = 0
            except BatchSkipped as e:
                self.skip_batch(str(e), batch["cut_ids"])
                continue
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self.rank == 0 and self.step % tc.log_interval == 0:
                self.tb.add_scalar("train/loss", loss_value, self.step)
                self.tb.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                self.history["steps"].append({"step": self.step, "loss": loss_value,
                                              "epoch_frac": self.epoch + min(1.0, self.batches_done / self.steps_per_epoch)})
            if tc.save_every_steps and self.step % tc.save_every_steps == 0:
                self.save_step_checkpoint()
        bar.close()
        return self.epoch_loss[0] / max(1.0, self.epoch_loss[1])  # global sums: the same on every rank

    def epoch_sampler(self):
        """This rank's sampler of the current epoch (the same batches every time it is built)."""
        tc = self.cfg.train
        world, rank = (1, 0) if self.rank_split else (self.world_size, self.rank)
        return make_train_sampler(self.train_cuts, tc.max_duration, self.epoch, tc.sortagrad, tc.num_buckets,
                                  tc.seed, world, rank, tc.max_cuts)

    def train_step(self, batch: dict) -> float:
        """One optimizer step on `batch` (this rank's part of the global batch); returns the
        global batch's loss per token. The loss is divided by the tokens of the global batch,
        so N processes step exactly as one process with their batches together would."""
        tc = self.cfg.train
        if not self.all_ranks_agree(bool(batch["cut_ids"])):
            raise BatchSkipped("empty batch")
        try:
            loss, tokens, _, _ = compute_loss(self.ddp_model, batch, self.device, tc.dtype)
            finite = bool(torch.isfinite(loss))
            # [loss, tokens, non-finite ranks] summed over the ranks in one all-reduce
            total = self.reduce_over_ranks([loss.item() if finite else 0.0, tokens, 0 if finite else 1])
            self.optimizer.zero_grad(set_to_none=True)
            if total[2] > 0:
                if self.world_size > 1:  # DDP expects every rank's backward; the gradients are dropped
                    self.scaler.scale(torch.nan_to_num(loss) * 0.0).backward()
                    self.optimizer.zero_grad(set_to_none=True)
                raise BatchSkipped("non-finite loss")
            self.scaler.scale(loss * (self.world_size / max(1.0, total[1]))).backward()
        except torch.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise BatchSkipped("out of memory") from None
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        self.epoch_loss[0] += total[0]  # summed over the ranks already
        self.epoch_loss[1] += total[1]
        if self.rank == 0 and self.step % tc.log_interval == 0:
            self.tb.add_scalar("train/grad_norm", float(grad_norm), self.step)
        return total[0] / max(1.0, total[1])

    def skip_batch(self, reason: str, cut_ids: list[str]) -> None:
        """Count a skipped batch, name its cuts, and stop after too many in a row."""
        self.bad_batches[reason] = self.bad_batches.get(reason, 0) + 1
        self.skipped_in_a_row += 1
        if reason != "empty batch":
            log.warning("skipped a batch (%s) at step %d; its cuts: %s", reason, self.step, " ".join(cut_ids))
        if self.skipped_in_a_row > self.cfg.train.max_bad_batches:
            raise TrainingStopped(
                f"{self.skipped_in_a_row} batches in a row were skipped (the last: {reason}); training stops. "
                "Non-finite losses: lower train.lr or check the data named above; out of memory: lower "
                "train.max_duration")

    def check_largest_batch(self) -> None:
        """Run forward and backward once on the batch of the longest cuts, then restore the
        model and RNG: a batch that does not fit in memory shows at minute one, not hour ten."""
        tc = self.cfg.train
        cuts, total = [], 0.0
        for cut in sorted(self.train_cuts, key=lambda c: c.duration, reverse=True):
            if cuts and (total + cut.duration > tc.max_duration or (tc.max_cuts and len(cuts) >= tc.max_cuts)):
                break
            cuts.append(cut)
            total += cut.duration
        batch = self.train_set[CutSet.from_cuts(cuts)]
        if not batch["cut_ids"]:
            return
        saved, rng = copy.deepcopy(self.model.state_dict()), rng_state()
        try:
            loss, tokens, _, _ = compute_loss(self.model, batch, self.device, tc.dtype)
            (loss / max(1, tokens)).backward()
        except torch.OutOfMemoryError as e:
            raise TrainingStopped(f"the largest batch ({len(cuts)} cuts, {total:.0f} s of audio) does not fit in "
                                  "memory: lower train.max_duration (or train.max_cuts)") from e
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            self.model.load_state_dict(saved)
            set_rng_state(rng)
        log.info("the largest batch (%d cuts, %.0f s of audio) fits in memory", len(cuts), total)

    def all_ranks_agree(self, flag: bool) -> bool:
        """Whether `flag` holds on every rank (the ranks must take the same branch)."""
        return self.reduce_over_ranks([0 if flag else 1])[0] == 0

    def reduce_over_ranks(self, values: list[float], op=dist.ReduceOp.SUM) -> list[float]:
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def min_over_ranks(self, value: float) -> float:
        return self.reduce_over_ranks([value], op=dist.ReduceOp.MIN)[0]

    def all_reduce_ratio(self, num: float, den: float) -> float:
        num, den = self.reduce_over_ranks([num, den])
        return num / max(1.0, den)

    def validate(self) -> tuple[float, float]:
        """Dev loss per token and greedy CER (over all ranks' shares of dev)."""
        sampler = make_eval_sampler(self.dev_cuts, self.cfg.train.max_duration, self.world_size, self.rank)
        loss, tokens, errors, chars = evaluate(self.model, sampler, self.tokenizer, self.device, self.cfg.train.dtype)
        self.model.train()
        return self.all_reduce_ratio(loss, tokens), self.all_reduce_ratio(errors, chars)

    def log_bad_data(self) -> None:
        for reason, ids in self.bad_cuts.items():
            log.warning("cuts skipped so far (%s): %d: %s", reason, len(ids), " ".join(ids[:20]) +
                        (" ..." if len(ids) > 20 else ""))
        for reason, n in self.bad_batches.items():
            if reason != "empty batch":
                log.warning("batches skipped so far (%s): %d", reason, n)

    def fit(self) -> None:
        tc = self.cfg.train
        start = time.time()
        if tc.check_largest_batch and self.step == 0 and self.batches_done == 0:
            self.check_largest_batch()
        while self.epoch < tc.epochs:
            t0 = time.time()
            train_loss = self.train_one_epoch()
            dev_loss, dev_cer = self.validate()
            elapsed = time.time() - t0
            self.history["epochs"].append({"epoch": self.epoch, "train_loss": train_loss, "dev_loss": dev_loss,
                                           "dev_cer": dev_cer, "seconds": elapsed, "step": self.step})
            log.info("epoch %d: train loss %.4f, dev loss %.4f, dev CER %.2f%%, %.0f s",
                     self.epoch + 1, train_loss, dev_loss, 100 * dev_cer, elapsed)
            self.log_bad_data()
            if self.rank == 0:
                self.tb.add_scalar("dev/loss", dev_loss, self.step)
                self.tb.add_scalar("dev/cer", dev_cer, self.step)
            improved = dev_cer < self.best_cer
            self.best_cer = min(self.best_cer, dev_cer)
            self.epoch += 1
            self.batches_done, self.epoch_loss = 0, [0.0, 0]
            self.save_checkpoint(f"epoch-{self.epoch}.pt")
            if improved:
                self.save_checkpoint("best.pt")
            self.save_checkpoint("last.pt")  # its presence marks a finished epoch
            if self.rank == 0:
                (self.exp_dir / "checkpoints" / "averaged.pt").unlink(missing_ok=True)  # stale now
                (self.exp_dir / "log" / "history.json").write_text(json.dumps(self.history, indent=1))
                plot_curves(self.history, self.exp_dir / "curves.png")
        log.info("training done in %.1f min; best dev CER %.2f%%", (time.time() - start) / 60, 100 * self.best_cer)


@torch.no_grad()
def evaluate(model, sampler, tokenizer: Tokenizer, device: torch.device, dtype: str = "float32"):
    """(summed CTC loss, tokens, character errors, reference characters) of `model` in eval
    mode on the batches of `sampler`, decoded greedily."""
    model.eval()
    total_loss, total_tokens, errors, ref_chars = 0.0, 0, 0, 0
    loader = torch.utils.data.DataLoader(AsrDataset(tokenizer), sampler=sampler, batch_size=None, num_workers=0,
                                         generator=torch.Generator())  # leaves the global RNG alone
    for batch in loader:
        if not batch["cut_ids"]:
            continue
        loss, tokens, log_probs, out_lens = compute_loss(model, batch, device, dtype)
        total_loss += loss.item()
        total_tokens += tokens
        for ref, hyp in zip(batch["texts"], greedy_decode(log_probs, out_lens, tokenizer)):
            counts = error_counts(list(ref), list(hyp))
            errors += counts["errors"]
            ref_chars += counts["ref"]
    return total_loss, total_tokens, errors, ref_chars


def rng_state() -> dict:
    """The states of every random generator training draws from, as tensors and numbers
    (so that `torch.load(..., weights_only=True)` reads them back)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
             "python": [version, torch.tensor(mt, dtype=torch.int64), py_gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, mt, py_gauss = state["python"]
    random.setstate((version, tuple(mt.tolist()), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_checkpoints(ckpt_dir: Path) -> list[Path]:
    """checkpoints/step-N.pt files, oldest first."""
    return sorted(ckpt_dir.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def resume_candidates(ckpt_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Checkpoints a run could resume from, newest first: step-N.pt, last.pt (the end of the last
    finished epoch; first among equally new ones) and epoch-N.pt; and the files whose step could
    not be read, with the reason. last.pt's and epoch-N.pt's steps are read with mmap (cheap)."""
    candidates, bad = [], []
    for p in step_checkpoints(ckpt_dir):
        candidates.append((int(p.stem.split("-")[1]), 0, p))
    epochs = [p for p in ckpt_dir.glob("epoch-*.pt") if p.stem[6:].isdigit()]
    for rank, paths in ((2, [ckpt_dir / "last.pt"]), (1, epochs)):
        for p in paths:
            if not p.exists():
                continue
            try:
                candidates.append((int(load_checkpoint(p, mmap=True)["step"]), rank, p))
            except (CheckpointError, KeyError, TypeError, ValueError) as e:
                bad.append((p, str(e) if isinstance(e, CheckpointError) else f"{p} has no step"))
    return [p for *_, p in sorted(candidates, key=lambda c: c[:2], reverse=True)], bad


def load_latest_checkpoint(ckpt_dir: Path) -> tuple[Path | None, dict | None, list[tuple[Path, str]]]:
    """The newest checkpoint in `ckpt_dir` that loads (path and contents; None, None if there is
    none), and the newer ones that did not, with the reason (a truncated or corrupt file)."""
    candidates, bad = resume_candidates(ckpt_dir)
    for p in candidates:
        try:
            return p, load_checkpoint(p), bad
        except CheckpointError as e:
            bad.append((p, str(e)))
    return None, None, bad


def model_differences(old: dict, new: dict) -> list[str]:
    """`model.key old -> new` for every model option that differs between two config dicts."""
    return [f"model.{k} {old.get(k)!r} -> {new.get(k)!r}" for k in new if old.get(k) != new.get(k)]


def setup_logging(log_file: Path | None, rank: int) -> None:
    handlers = [logging.StreamHandler()]
    if log_file is not None and rank == 0:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s", handlers=handlers, force=True)


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def accept_run(cfg: ExperimentConfig, tokenizer: Tokenizer, exp_dir: Path, resume: bool):
    """Whether `exp_dir` can take this run, decided before anything is written there: an existing
    run needs --resume, and a resumed run the model and tokenizer it was trained with. Returns the
    checkpoint to resume from (path, contents, or None, None) and the newer files that did not load."""
    ckpt_dir = exp_dir / "checkpoints"
    existing = sorted(ckpt_dir.glob("*.pt")) if ckpt_dir.is_dir() else []
    if not existing:
        return None, None, []
    if not resume:
        raise FileExistsError(f"{exp_dir} already holds a training run ({len(existing)} checkpoints); pass --resume "
                              "to continue it or choose another --exp-dir")
    path, ckpt, bad = load_latest_checkpoint(ckpt_dir)
    if path is None:
        if not bad:  # only best.pt / averaged.pt: nothing says where training stopped
            raise TrainingStopped(f"{exp_dir} has no checkpoint to resume from (no last.pt, step-N.pt or epoch-N.pt)")
        raise CheckpointError(f"no checkpoint of {ckpt_dir} loads, so there is nothing to resume from: "
                              + "; ".join(reason for _, reason in bad))
    try:
        old_model = config_to_dict(config_from_dict(ckpt["config"]))["model"]
    except ValueError as e:
        raise CheckpointError(f"{path} holds a config this version cannot read: {e}") from None
    changed = model_differences(old_model, config_to_dict(cfg)["model"])
    if changed:
        raise TrainingStopped(f"--resume: the model config differs from the one {exp_dir} was trained with "
                              f"({', '.join(changed)}); resume with its config ({exp_dir / 'config.yaml'}) or train "
                              "the new model in another --exp-dir")
    if ckpt["tokenizer"] != tokenizer.to_dict():
        raise TrainingStopped(f"--resume: the tokenizer of --lang-dir differs from the one {exp_dir} was trained "
                              "with; give the --lang-dir of that run, or train in another --exp-dir")
    return path, ckpt, bad


def run(rank: int, world_size: int, cfg: ExperimentConfig, data: TrainData, tokenizer: Tokenizer,
        exp_dir: str | Path, resume: bool = False) -> Path:
    """Train (or resume) an experiment in `exp_dir`; returns the best checkpoint's path.

    Nothing is written to `exp_dir` before the run is accepted (see `accept_run`). `cfg` may
    say dtype auto: it is resolved for the device here, and config.yaml and the checkpoints
    hold the resolved precision, with the reason on config.yaml's first line.
    """
    exp_dir = Path(exp_dir)
    cfg.validate()
    device = pick_device()
    resume_path, ckpt, bad = accept_run(cfg, tokenizer, exp_dir, resume)

    setup_logging(exp_dir / "log" / "train.log", rank)
    for path, why in bad:
        log.warning("passing over %s, which does not load: %s", path, why)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    # under torchrun (even with one process, so that NCCL/gloo are exercised) or with several
    if (world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ) and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dtype, reason = resolve_dtype(cfg.train.dtype, device)
    if dist.is_initialized() and dist.get_world_size() > 1:  # a timed CPU probe could differ between ranks
        names = list(DTYPES)
        agreed = torch.tensor([names.index(dtype)], device=device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)  # float32 if any rank chose it
        if names[int(agreed)] != dtype:
            dtype, reason = names[int(agreed)], f"{reason}, but another rank chose {names[int(agreed)]}"
    log.info("precision: %s (%s)", dtype, reason)
    cfg = copy.deepcopy(cfg)
    cfg.train.dtype = dtype
    trainer = Trainer(cfg, data, tokenizer, exp_dir, rank, world_size, device)  # stops if no cut is left
    if rank == 0:
        save_config(cfg, exp_dir / "config.yaml", comment=f"train.dtype: {dtype} ({reason})")
    if ckpt is not None:
        trainer.load_state(ckpt)
        del ckpt
        log.info("resumed from %s: epoch %d, %d batches into it, step %d", resume_path, trainer.epoch + 1,
                 trainer.batches_done, trainer.step)
    trainer.fit()
    if dist.is_initialized():
        dist.destroy_process_group()
    return exp_dir / "checkpoints" / "best.pt"
