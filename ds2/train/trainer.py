"""The training loop: `compute_loss`, `train_one_epoch`, `validate`, `save_checkpoint`, `run`.

Entry point: `ds2 train --config conf/ds2.yaml --exp-dir exp/ds2 ...` (see `ds2 train --help`).
Under `torchrun` it reads RANK/WORLD_SIZE, trains with DistributedDataParallel and only rank 0
writes. Beside it: data.py (what it reads), loss.py, schedule.py (LR), distributed.py, evaluate.py
(dev loss and CER), bad_data.py, memory.py (largest-batch check), experiment.py (the folder).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path

import torch

from ds2.atomic import save_atomic, write_text_atomic
from ds2.checkpoint import epoch_name, rng_state, save_step_checkpoint, seed_generators, set_rng_state
from ds2.files import AVERAGED, BEST, LAST, checkpoint_dir
from ds2.config import ExperimentConfig, config_to_dict, save_config
from ds2.data.augment import training_augment, training_cut_transforms
from ds2.data.dataset import AsrDataset
from ds2.data.sampler import SkipFirst, make_train_sampler
from ds2.model import DeepSpeech2
from ds2.precision import resolve_dtype
from ds2.progress import progress
from ds2.text import Tokenizer
from ds2.text.pinyin import aux_encoder
from ds2.train.bad_data import EMPTY_BATCH, BadData
from ds2.train.data import TrainData, check_pitch_features, read_stats, read_train_cuts, usable_cuts
from ds2.train.distributed import (Ranks, agree_on_dtype, data_parallel, init_distributed, pick_device,
                                   shutdown_distributed)
from ds2.train.errors import BatchSkipped, TrainingStopped
from ds2.train.evaluate import dev_summary, evaluate
from ds2.train.experiment import accept_run, setup_logging
from ds2.train.loss import compute_loss, compute_training_loss
from ds2.train.memory import check_largest_batch
from ds2.train.plot import plot_curves
from ds2.train.schedule import lr_scheduler

__all__ = ["BatchSkipped", "TrainData", "Trainer", "TrainingStopped", "compute_loss", "run"]

log = logging.getLogger("ds2.train")


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
        self.ranks = Ranks(rank, world_size, self.device)
        tc = cfg.train
        seed_generators(tc.seed)

        train_cuts, self.rank_split = read_train_cuts(data.train_cuts, rank, world_size)
        first = next(iter(train_cuts))
        self.num_features, self.frame_shift = first.num_features, first.frame_shift
        cut_transforms = training_cut_transforms(tc, first, TrainingStopped)  # noise: checked before the long pass
        stats = read_stats(data.stats, first)
        self.features = stats["features"]  # how to compute them from audio (ds2 transcribe)
        check_pitch_features(cfg.model.pitch_features, self.features, data.train_cuts)
        self.model = DeepSpeech2(cfg.model, self.num_features, tokenizer.vocab_size)
        self.model.set_normalization(stats["mean"], stats["std"])
        self.model.to(self.device)
        self.train_cuts, self.dev_cuts = usable_cuts(train_cuts, self.rank_split, data.dev_cuts, tokenizer,
                                                     self.model, self.ranks, tc)
        self.ddp_model = data_parallel(self.model)

        # float16 needs loss scaling; for float32/bfloat16 the scaler is a pass-through.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.dtype == "float16")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        total_audio = self.train_cuts.total_duration
        self.steps_per_epoch = max(1, math.ceil(total_audio / (tc.max_duration * world_size)))
        if self.rank_split:  # every rank steps as often as the one with the least data
            self.steps_per_epoch = int(self.ranks.min_over_ranks(math.ceil(total_audio / tc.max_duration)))
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.scheduler = lr_scheduler(self.optimizer, tc.warmup_steps, self.total_steps, tc.final_lr_ratio)
        self.train_set = AsrDataset(tokenizer, augment=training_augment(tc), cut_transforms=cut_transforms,
                                    aux_encode=aux_encoder(cfg.model.aux_units))
        self.epoch, self.step = 0, 0
        self.batches_done = 0  # batches of the current epoch already trained (or skipped)
        self.epoch_loss = [0.0, 0]  # summed loss and tokens of the current epoch so far, over all ranks
        self.bad = BadData(tc.max_bad_batches)
        self.best_cer = float("inf")
        self.history = {"title": self.exp_dir.name, "steps": [], "epochs": []}
        self.tb = None
        if rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.exp_dir / "tensorboard"))
            log.info("model: %.2fM parameters, time stride %d", self.model.num_params() / 1e6,
                     cfg.model.time_stride)

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        """Everything a checkpoint holds: what decoding needs, and what resuming needs."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "config": config_to_dict(self.cfg), "tokenizer": self.tokenizer.to_dict(),
                "num_features": self.num_features, "frame_shift": self.frame_shift, "features": self.features, "epoch": self.epoch,
                "step": self.step, "batches_done": self.batches_done, "epoch_loss": list(self.epoch_loss),
                "rng": rng_state(), "best_cer": self.best_cer, "history": json.dumps(self.history)}

    def save_checkpoint(self, name: str) -> None:
        """Write checkpoints/`name` (rank 0 only), atomically."""
        if self.rank == 0:
            save_atomic(self.state(), checkpoint_dir(self.exp_dir) / name)

    def save_step_checkpoint(self) -> None:
        """checkpoints/step-N.pt, keeping the newest `keep_last_steps` of them."""
        if self.rank == 0:
            save_step_checkpoint(self.state(), checkpoint_dir(self.exp_dir), self.step, self.cfg.train.keep_last_steps)

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.best_cer = ckpt["epoch"], ckpt["step"], ckpt["best_cer"]
        self.batches_done, self.epoch_loss = ckpt.get("batches_done", 0), list(ckpt.get("epoch_loss", [0.0, 0]))
        self.history = json.loads(ckpt["history"])
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])

    # -- the loop ------------------------------------------------------------------------
    def loader(self, sampler, dataset, workers: int):
        # its own generator: creating a DataLoader draws a seed, which must not move the global RNG
        # (a run resumed mid-epoch creates its loader at another point of the RNG's sequence)
        return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=workers,
                                           generator=torch.Generator().manual_seed(self.cfg.train.seed + self.epoch))

    def train_one_epoch(self) -> float:
        """Train to the end of the current epoch (from where a resumed run left it); returns the
        epoch's loss per token over all ranks."""
        tc = self.cfg.train
        self.model.train()
        sampler, stop = self.epoch_sampler(), None
        if self.rank_split:  # the ranks' own data: all stop after the fewest batches any rank has
            stop = int(self.ranks.min_over_ranks(sum(1 for _ in self.epoch_sampler())))
        if self.batches_done:
            log.info("epoch %d resumes after its first %d batches", self.epoch + 1, self.batches_done)
        bar = progress(self.loader(SkipFirst(sampler, self.batches_done, stop), self.train_set, tc.num_workers),
                       total=max(self.steps_per_epoch, self.batches_done), initial=self.batches_done,
                       desc=f"epoch {self.epoch + 1}/{tc.epochs}", unit="batch", disable=self.rank != 0,
                       dynamic_ncols=True)
        for batch in bar:
            self.batches_done += 1
            self.bad.skipped_cuts(batch["skipped"])
            try:
                loss_value = self.train_step(batch)
                self.bad.trained()
            except BatchSkipped as e:
                self.bad.skipped_batch(str(e), batch["cut_ids"], self.step)
                continue
            lr = self.scheduler.get_last_lr()[0]
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
            if self.rank == 0 and self.step % tc.log_interval == 0:
                self.tb.add_scalar("train/loss", loss_value, self.step)
                self.tb.add_scalar("train/lr", lr, self.step)
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
        if not self.ranks.all_ranks_agree(bool(batch["cut_ids"])):
            raise BatchSkipped(EMPTY_BATCH)
        try:
            loss, token_loss, tokens = compute_training_loss(self.ddp_model, batch, self.device, tc.dtype, tc.aux_weight)
            finite = bool(torch.isfinite(loss))
            # [the tokens' loss, tokens, non-finite ranks] summed over the ranks in one all-reduce
            total = self.ranks.reduce_over_ranks([token_loss if finite else 0.0, tokens, 0 if finite else 1])
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
        self.epoch_loss = [self.epoch_loss[0] + total[0], self.epoch_loss[1] + total[1]]  # summed over the ranks
        if self.rank == 0 and self.step % tc.log_interval == 0:
            self.tb.add_scalar("train/grad_norm", float(grad_norm), self.step)
        return total[0] / max(1.0, total[1])

    def validate(self) -> tuple[float, float, int, int]:
        """Dev loss per token, greedy CER, character errors and reference characters, over all
        ranks' shares of dev (`ds2.train.evaluate`: the CER `ds2 decode --method greedy` gives)."""
        r = evaluate(self.model, self.dev_cuts, self.tokenizer, self.device, self.cfg.train.dtype,
                     self.world_size, self.rank)
        self.model.train()
        return dev_summary(self.ranks.reduce_over_ranks([r.loss, r.tokens, r.char_errors, r.ref_chars]))

    def fit(self) -> None:
        """Train the remaining epochs; after each, validate and write the epoch's checkpoints,
        log/history.json and curves.png."""
        tc = self.cfg.train
        start = time.time()
        if tc.check_largest_batch and self.step == 0 and self.batches_done == 0:
            check_largest_batch(self.model, self.optimizer, self.train_set, self.train_cuts, tc.max_duration,
                                tc.max_cuts, self.device, tc.dtype)
        while self.epoch < tc.epochs:
            t0 = time.time()
            train_loss = self.train_one_epoch()
            dev_loss, dev_cer, errors, chars = self.validate()
            elapsed = time.time() - t0
            self.history["epochs"].append({"epoch": self.epoch, "train_loss": train_loss, "dev_loss": dev_loss,
                                           "dev_cer": dev_cer, "dev_char_errors": errors, "dev_chars": chars,
                                           "seconds": elapsed, "step": self.step})
            log.info("epoch %d: train loss %.4f, dev loss %.4f, dev CER %.2f%% (%d / %d), %.0f s",
                     self.epoch + 1, train_loss, dev_loss, 100 * dev_cer, errors, chars, elapsed)
            self.bad.log_summary()
            if self.rank == 0:
                self.tb.add_scalar("dev/loss", dev_loss, self.step)
                self.tb.add_scalar("dev/cer", dev_cer, self.step)
            improved = dev_cer < self.best_cer
            self.best_cer = min(self.best_cer, dev_cer)
            self.epoch += 1
            self.batches_done, self.epoch_loss = 0, [0.0, 0]
            self.save_checkpoint(epoch_name(self.epoch))
            if improved:
                self.save_checkpoint(BEST)
            self.save_checkpoint(LAST)  # its presence marks a finished epoch
            if self.rank == 0:
                (checkpoint_dir(self.exp_dir) / AVERAGED).unlink(missing_ok=True)  # stale now
                write_text_atomic(self.exp_dir / "log" / "history.json", json.dumps(self.history, indent=1))
                plot_curves(self.history, self.exp_dir / "curves.png")
        log.info("training done in %.1f min; best dev CER %.2f%%", (time.time() - start) / 60, 100 * self.best_cer)


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
    init_distributed(world_size, device)
    dtype, reason = agree_on_dtype(*resolve_dtype(cfg.train.dtype, device), device)
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
    shutdown_distributed()
    return checkpoint_dir(exp_dir) / BEST
