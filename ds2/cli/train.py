"""`ds2 train`: train a DeepSpeech2 model (one process, or many under torchrun)."""

from __future__ import annotations

import os
from pathlib import Path

import click

_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("train")
@click.option("--exp-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Experiment folder: config.yaml, checkpoints/, log/, tensorboard/, curves.png.")
@click.option("--train-cuts", required=True, type=_PATH, help="Training cuts with features.")
@click.option("--dev-cuts", required=True, type=_PATH, help="Validation cuts with features.")
@click.option("--stats", required=True, type=_PATH, help="Feature mean/std of the train split.")
@click.option("--lang-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with tokens.txt (and bpe.model) from `ds2 tokens`.")
@click.option("--config", "config_file", type=_PATH, default=None,
              help="YAML with `model:` and `train:` sections over the defaults.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one option, e.g. --set train.epochs=2 --set model.rnn_layers=3.")
@click.option("--resume", is_flag=True, help="Continue the run in --exp-dir from its last checkpoint.")
def command(exp_dir, train_cuts, dev_cuts, stats, lang_dir, config_file, overrides, resume):
    """Train with CTC, SortaGrad and AdamW; validate and checkpoint every epoch.

    Options come in three layers: built-in defaults, then --config, then --set. The
    resolved config is written to EXP_DIR/config.yaml; every checkpoint carries it with
    the tokenizer and the feature normalisation. Launched by torchrun, it trains with
    DistributedDataParallel (gloo on CPU, NCCL on GPUs).

    Example: ds2 train --config conf/ds2.yaml --exp-dir exp/ds2 --train-cuts data/fbank/synth_cuts_train.jsonl.gz
    --dev-cuts data/fbank/synth_cuts_dev.jsonl.gz --stats data/fbank/synth_stats_train.pt --lang-dir data/lang_char
    """
    from ds2.text import load_tokenizer
    from ds2.train.config import resolve_config
    from ds2.train.trainer import TrainData, run

    try:
        cfg = resolve_config(config_file, list(overrides))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    try:
        best = run(rank, world_size, cfg, TrainData(train_cuts, dev_cuts, stats), load_tokenizer(lang_dir),
                   exp_dir, resume=resume)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
    if rank == 0:
        click.echo(f"best checkpoint: {best}")
