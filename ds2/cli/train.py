"""`ds2 train`: train a DeepSpeech2 model (one process, or many under torchrun)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ds2.precision import CHOICES as DTYPE_CHOICES

_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("train")
@click.option("--exp-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Experiment folder: config.yaml, checkpoints/, log/, tensorboard/, curves.png.")
@click.option("--train-cuts", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training cuts with features, or a folder of Shar shards from `ds2 shar` (each rank reads its own).")
@click.option("--dev-cuts", required=True, type=_PATH, help="Validation cuts with features.")
@click.option("--stats", required=True, type=_PATH, help="Feature mean/std of the train split.")
@click.option("--lang-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with tokens.txt (and bpe.model) from `ds2 tokens`.")
@click.option("--config", "config_file", type=_PATH, default=None,
              help="YAML with `model:` and `train:` sections over the defaults.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one option, e.g. --set train.epochs=2 --set model.rnn_layers=3.")
@click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default=None,
              help="Autocast precision (train.dtype; default auto): auto is bfloat16 where the device computes it "
                   "natively (GPUs that have it, AVX-512-BF16/AMX CPUs), else float32; float16 on GPUs (with loss "
                   "scaling). config.yaml records the precision chosen and why.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --exp-dir from its newest checkpoint, mid-epoch if a step checkpoint is newer "
                   "than the last finished epoch.")
def command(exp_dir, train_cuts, dev_cuts, stats, lang_dir, config_file, overrides, dtype, resume):
    """Train with CTC, SortaGrad and AdamW; validate and checkpoint every epoch.

    Options come in three layers: built-in defaults, then --config, then --set. The
    resolved config is written to EXP_DIR/config.yaml; every checkpoint carries it with
    the tokenizer and the feature normalisation. Checkpoints: epoch-N.pt, best.pt and
    last.pt at epoch ends, and step-N.pt every train.save_every_steps steps (resumable
    mid-epoch). The dev CER of each epoch (log/train.log, log/history.json) is the %CER
    `ds2 decode EXP_DIR --method greedy` gives for that epoch's checkpoint on the same cuts
    (those of --dev-cuts training can use; the log names the others) in the same precision.
    Bad cuts (unreadable features, empty or unmappable text, too short for their labels)
    and bad batches (non-finite loss, out of memory) are skipped, counted and named in the
    log.

    Launched by torchrun, it trains with DistributedDataParallel (gloo on CPU, NCCL on
    GPUs), e.g. torchrun --nproc-per-node 2 $(which ds2) train ...; batch sizes are per
    process, and the loss is normalised over the global batch.

    Example: ds2 train --config conf/ds2.yaml --exp-dir exp/ds2 --train-cuts data/fbank/synth_cuts_train.jsonl.gz
    --dev-cuts data/fbank/synth_cuts_dev.jsonl.gz --stats data/fbank/synth_stats_train.pt --lang-dir data/lang_char
    """
    from ds2.config import resolve_config

    try:  # every option is checked here, before any data or model loads (and before torch is imported)
        cfg = resolve_config(config_file, list(overrides) + ([f"train.dtype={dtype}"] if dtype else []))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    from ds2.text import load_tokenizer
    from ds2.checkpoint import CheckpointError
    from ds2.train.trainer import TrainData, TrainingStopped, run

    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    try:
        tokenizer = load_tokenizer(lang_dir)
    except ValueError as e:
        raise click.UsageError(f"--lang-dir: {e}") from None
    try:
        best = run(rank, world_size, cfg, TrainData(train_cuts, dev_cuts, stats), tokenizer, exp_dir, resume=resume)
    except (FileExistsError, TrainingStopped, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    if rank == 0:
        click.echo(f"best checkpoint: {best}")


@click.command("average")
@click.argument("exp_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--num", "-n", default=2, show_default=True, help="Average the last N epoch checkpoints.")
@click.option("--dev-cuts", required=True, type=_PATH, help="Cuts on which the average must beat best.pt.")
def average_command(exp_dir, num, dev_cuts):
    """Average the weights of the last N epoch checkpoints of EXP_DIR (as icefall/ESPnet do).

    The average is kept as EXP_DIR/checkpoints/averaged.pt, which `ds2 decode EXP_DIR` then
    uses, only if its greedy CER on --dev-cuts is lower than best.pt's; the comparison is
    written to checkpoints/averaged.json either way. Both are evaluated where decoding runs (a GPU
    if there is one, else the CPU) in the precision dtype auto picks there (float32 where
    bfloat16 is only emulated).

    Example: ds2 average exp/ds2 --num 2 --dev-cuts data/fbank/synth_cuts_dev.jsonl.gz
    """
    from ds2.train.average import average_and_choose
    from ds2.train.errors import TrainingStopped

    try:
        report = average_and_choose(exp_dir, num, dev_cuts)
    except (ValueError, FileNotFoundError, TrainingStopped) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"dev CER: average of {', '.join(report['averaged'])} {100 * report['dev_cer_averaged']:.2f}%, "
               f"best.pt {100 * report['dev_cer_best']:.2f}%: decoding uses {report['chosen']}")
