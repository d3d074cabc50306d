"""`ds2 shar`: write a cut set with its features as Lhotse Shar shards for many-machine training."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("shar")
@click.argument("cuts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Cuts per shard.")
def command(cuts, out_dir, shard_size):
    """Write CUTS (with features) as Shar shards in OUT_DIR: cuts.NNNNNN.jsonl.gz + features.NNNNNN.tar.

    Give OUT_DIR to `ds2 train --train-cuts`: under torchrun, rank r then reads only the
    shards k with k mod WORLD_SIZE == r (write at least as many shards as processes), and all
    ranks take as many steps per epoch as the one with the least data.

    Example: ds2 shar data/fbank/synth_cuts_train.jsonl.gz data/shar/train --shard-size 1000
    """
    from ds2.data.shar import export_shar

    try:
        written = export_shar(cuts, out_dir, shard_size)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{len(written)} shards in {out_dir}")
