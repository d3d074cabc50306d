"""`ds2 results`: write a recipe's RESULTS.md from its decoding folders."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("results")
@click.argument("recipe_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the Markdown [default: RECIPE_DIR/RESULTS.md].")
@click.option("--title", default=None, help="Heading of the page.")
def command(recipe_dir, output, title):
    """Tabulate every decoding of RECIPE_DIR/exp/*/decode_SET_METHOD/ (method x set, %WER and %CER
    with ins/del/sub), with the training summary, git hash, versions and the commands each
    stage recorded; write RESULTS.md and print it.

    Set and method are read from each folder's result.json (written by `ds2 decode` beside
    wer.txt), never from the folder's name; folders without it are left out with a warning.
    Dev sets (names starting with "dev") come first, then the others alphabetically.

    Example: ds2 results egs/synth
    """
    from ds2.report import write_results

    try:
        text = write_results(recipe_dir, output or recipe_dir / "RESULTS.md", title)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(text)
