"""The `ds2` command: one click group, one module per verb group."""

from __future__ import annotations

import logging

import click

from ds2 import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="ds2")
def main():
    """Deep Speech 2 toolkit: prepare corpora, compute features, train LMs and models, decode and score.

    A recipe (egs/<corpus>/run.sh) calls these verbs stage by stage; every verb's
    --help says what it reads and writes.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")


def _register():
    from ds2.cli import decode, export, features, lm, prepare, results, serve, shar, tokens, train, transcribe

    for module in (prepare, features, shar, tokens, lm, train, decode, results):
        main.add_command(module.command)
    main.add_command(decode.tune_command)
    main.add_command(train.average_command)
    main.add_command(export.command)
    main.add_command(transcribe.command)
    main.add_command(serve.command)


_register()
