"""The training loop: `compute_loss`, `train_one_epoch`, `validate`, `save_checkpoint`, `run`.

Entry point: `ds2 train --config conf/ds2.yaml --exp-dir exp/ds2 ...` (see `ds2 train --help`).
Under `torchrun` it reads RANK/WORLD_SIZE, trains with DistributedDataParallel and only
rank 0 writes.
"""

from __future__ import annotations

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

from ds2.data.dataset import AsrDataset
from ds2.data.sampler import make_eval_sampler, make_train_sampler
from ds2.decode.greedy import greedy_decode
from ds2.model import DeepSpeech2
from ds2.score import error_counts
from ds2.text import Tokenizer
from ds2.train.checkpoint import load_checkpoint, save_atomic
from ds2.train.config import ExperimentConfig, config_to_dict, save_config
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


def filter_trainable(cuts: CutSet, tokenizer: Tokenizer, model: DeepSpeech2, split: str) -> CutSet:
    """Drop cuts with an empty or unmappable transcript, or too few output frames for their
    label sequence; log a count per reason and the ids."""
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
    log.info("%s: %d of %d cuts kept", split, len(kept), len(cuts))
    return CutSet.from_cuts(kept)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_loss(model, batch: dict, device: torch.device, dtype: str = "float32"):
    """Summed CTC loss of a batch, its token count, and the model outputs.

    The model runs under autocast in `dtype`; the CTC loss is always computed in float32.
    """
    if dtype not in DTYPES:
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


class Trainer:
    """State of one training run; `run` builds it and calls the loop."""

    def __init__(self, cfg: ExperimentConfig, data: TrainData, tokenizer: Tokenizer, exp_dir: Path,
                 rank: int = 0, world_size: int = 1, device: torch.device | None = None):
        self.cfg, self.data, self.tokenizer, self.exp_dir = cfg, data, tokenizer, Path(exp_dir)
        self.rank, self.world_size = rank, world_size
        self.device = device or torch.device("cpu")
        tc = cfg.train
        torch.manual_seed(tc.seed)
        random.seed(tc.seed)
        np.random.seed(tc.seed)

        train_cuts = CutSet.from_file(data.train_cuts)
        dev_cuts = CutSet.from_file(data.dev_cuts)
        first = next(iter(train_cuts))
        self.num_features = first.num_features
        self.frame_shift = first.frame_shift
        stats = torch.load(data.stats, map_location="cpu", weights_only=True)
        self.model = DeepSpeech2(cfg.model, self.num_features, tokenizer.vocab_size)
        self.model.set_normalization(stats["mean"], stats["std"])
        self.model.to(self.device)
        self.train_cuts = filter_trainable(train_cuts, tokenizer, self.model, "train").to_eager()
        self.dev_cuts = filter_trainable(dev_cuts, tokenizer, self.model, "dev").to_eager()
        self.ddp_model = self.model
        if world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model)

        # float16 needs loss scaling; for float32/bfloat16 the scaler is a pass-through.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.dtype == "float16")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        total_audio = sum(c.duration for c in self.train_cuts)
        self.steps_per_epoch = max(1, math.ceil(total_audio / (tc.max_duration * world_size)))
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(tc.warmup_steps, self.total_steps, tc.final_lr_ratio))
        augment = None
        if tc.spec_augment:
            from lhotse.dataset import SpecAugment

            augment = SpecAugment(time_warp_factor=tc.time_warp or None, num_feature_masks=tc.freq_masks,
                                  features_mask_size=tc.freq_mask_size, num_frame_masks=tc.time_masks,
                                  frames_mask_size=tc.time_mask_size, max_frames_mask_fraction=0.2, p=0.9)
        self.train_set = AsrDataset(tokenizer, augment=augment)
        self.eval_set = AsrDataset(tokenizer)
        self.epoch, self.step = 0, 0
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
            "best_cer": self.best_cer,
            "history": json.dumps(self.history),
        }

    def save_checkpoint(self, name: str) -> None:
        if self.rank == 0:
            save_atomic(self.state(), self.exp_dir / "checkpoints" / name)

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.best_cer = ckpt["epoch"], ckpt["step"], ckpt["best_cer"]
        self.history = json.loads(ckpt["history"])

    # -- the loop ------------------------------------------------------------------------
    def loader(self, sampler, dataset, workers: int):
        return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=workers,
                                           persistent_workers=False)

    def train_one_epoch(self) -> float:
        tc = self.cfg.train
        self.model.train()
        sampler = make_train_sampler(self.train_cuts, tc.max_duration, self.epoch, tc.sortagrad,
                                     tc.num_buckets, tc.seed, self.world_size, self.rank)
        total_loss, total_tokens = 0.0, 0
        bar = tqdm(self.loader(sampler, self.train_set, tc.num_workers), total=self.steps_per_epoch,
                   desc=f"epoch {self.epoch + 1}/{tc.epochs}", unit="batch", disable=self.rank != 0,
                   dynamic_ncols=True)
        for i, batch in enumerate(bar):
            if not batch["cut_ids"]:
                continue
            loss, tokens, _, _ = compute_loss(self.ddp_model, batch, self.device, tc.dtype)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss / max(1, tokens)).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            loss_value = loss.item() / max(1, tokens)
            total_loss += loss.item()
            total_tokens += tokens
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self.rank == 0 and self.step % tc.log_interval == 0:
                self.tb.add_scalar("train/loss", loss_value, self.step)
                self.tb.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                self.tb.add_scalar("train/grad_norm", float(grad_norm), self.step)
                self.history["steps"].append({"step": self.step, "loss": loss_value,
                                              "epoch_frac": self.epoch + min(1.0, (i + 1) / self.steps_per_epoch)})
        bar.close()
        return self.all_reduce_ratio(total_loss, total_tokens)

    def all_reduce_ratio(self, num: float, den: float) -> float:
        if self.world_size > 1:
            t = torch.tensor([num, den], dtype=torch.float64, device=self.device)
            dist.all_reduce(t)
            num, den = t.tolist()
        return num / max(1.0, den)

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Dev loss per token and greedy CER."""
        self.model.eval()
        sampler = make_eval_sampler(self.dev_cuts, self.cfg.train.max_duration, self.world_size, self.rank)
        total_loss, total_tokens, errors, ref_chars = 0.0, 0, 0, 0
        for batch in self.loader(sampler, self.eval_set, 0):
            if not batch["cut_ids"]:
                continue
            loss, tokens, log_probs, out_lens = compute_loss(self.model, batch, self.device, self.cfg.train.dtype)
            total_loss += loss.item()
            total_tokens += tokens
            for ref, hyp in zip(batch["texts"], greedy_decode(log_probs, out_lens, self.tokenizer)):
                counts = error_counts(list(ref), list(hyp))
                errors += counts["errors"]
                ref_chars += counts["ref"]
        self.model.train()
        return self.all_reduce_ratio(total_loss, total_tokens), self.all_reduce_ratio(errors, ref_chars)

    def fit(self) -> None:
        tc = self.cfg.train
        start = time.time()
        while self.epoch < tc.epochs:
            t0 = time.time()
            train_loss = self.train_one_epoch()
            dev_loss, dev_cer = self.validate()
            elapsed = time.time() - t0
            self.history["epochs"].append({"epoch": self.epoch, "train_loss": train_loss, "dev_loss": dev_loss,
                                           "dev_cer": dev_cer, "seconds": elapsed, "step": self.step})
            log.info("epoch %d: train loss %.4f, dev loss %.4f, dev CER %.2f%%, %.0f s",
                     self.epoch + 1, train_loss, dev_loss, 100 * dev_cer, elapsed)
            if self.rank == 0:
                self.tb.add_scalar("dev/loss", dev_loss, self.step)
                self.tb.add_scalar("dev/cer", dev_cer, self.step)
            improved = dev_cer < self.best_cer
            self.best_cer = min(self.best_cer, dev_cer)
            self.epoch += 1
            self.save_checkpoint(f"epoch-{self.epoch}.pt")
            if improved:
                self.save_checkpoint("best.pt")
            self.save_checkpoint("last.pt")  # written last: its presence marks a finished epoch
            if self.rank == 0:
                (self.exp_dir / "log" / "history.json").write_text(json.dumps(self.history, indent=1))
                plot_curves(self.history, self.exp_dir / "curves.png")
        log.info("training done in %.1f min; best dev CER %.2f%%", (time.time() - start) / 60, 100 * self.best_cer)


def setup_logging(log_file: Path | None, rank: int) -> None:
    handlers = [logging.StreamHandler()]
    if log_file is not None and rank == 0:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s", handlers=handlers, force=True)


def run(rank: int, world_size: int, cfg: ExperimentConfig, data: TrainData, tokenizer: Tokenizer,
        exp_dir: str | Path, resume: bool = False) -> Path:
    """Train (or resume) an experiment in `exp_dir`; returns the best checkpoint's path."""
    exp_dir = Path(exp_dir)
    setup_logging(exp_dir / "log" / "train.log", rank)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if torch.cuda.is_available() \
        else torch.device("cpu")
    if rank == 0:
        (exp_dir / "log").mkdir(parents=True, exist_ok=True)
        save_config(cfg, exp_dir / "config.yaml")
    trainer = Trainer(cfg, data, tokenizer, exp_dir, rank, world_size, device)
    last = exp_dir / "checkpoints" / "last.pt"
    if resume and last.exists():
        trainer.load_state(load_checkpoint(last))
        log.info("resumed from %s at epoch %d (step %d)", last, trainer.epoch, trainer.step)
    elif not resume and last.exists():
        raise FileExistsError(f"{exp_dir} already holds a training run; pass --resume to continue it "
                              "or choose another --exp-dir")
    trainer.fit()
    if world_size > 1:
        dist.destroy_process_group()
    return exp_dir / "checkpoints" / "best.pt"
