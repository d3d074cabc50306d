"""`ds2 decode`: decode test sets with a trained experiment and score them."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("decode")
@click.argument("exp_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cuts", "cut_sets", multiple=True, required=True, metavar="NAME=PATH",
              help="A set to decode, e.g. --cuts test=data/fbank/synth_cuts_test.jsonl.gz (repeatable).")
@click.option("--method", default="greedy", type=click.Choice(["greedy"]), help="Decoding method.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Checkpoint to use [default: EXP_DIR/checkpoints/best.pt].")
@click.option("--max-duration", default=300.0, help="Seconds of audio per batch.")
def command(exp_dir, cut_sets, method, checkpoint, max_duration):
    """Decode each --cuts set with EXP_DIR's model; write EXP_DIR/decode_NAME_METHOD/.

    Each decoding folder holds recogs.txt (ref/hyp per utterance), errs.txt (alignments
    and error tables) and wer.txt (%WER and %CER with ins/del/sub counts).

    Example: ds2 decode exp/ds2 --cuts test=data/fbank/synth_cuts_test.jsonl.gz
    """
    from ds2.decode.runner import decode_cuts

    for spec in cut_sets:
        if "=" not in spec:
            raise click.UsageError(f"--cuts {spec!r} must be NAME=PATH")
        name, path = spec.split("=", 1)
        if not Path(path).exists():
            raise click.UsageError(f"--cuts {name}: {path} does not exist")
        wer, cer, out_dir = decode_cuts(exp_dir, path, name, method, checkpoint, max_duration)
        click.echo(f"{out_dir}: {wer.line('WER')}  {cer.line('CER')}")
