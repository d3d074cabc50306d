"""`ds2 tokens`: write the token inventory (`tokens.txt`) of a language folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("tokens")
@click.argument("lang_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--type", "kind", type=click.Choice(["char-en", "char", "bpe"]), default="char-en",
              help="char-en: blank + the 28 English characters; char: every character of --text "
                   "(e.g. Mandarin); bpe: a sentencepiece model trained on --text.")
@click.option("--text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training text, one sentence per line (char and bpe).")
@click.option("--vocab-size", default=500, help="BPE vocabulary size, blank included.")
def command(lang_dir, kind, text, vocab_size):
    """Write LANG_DIR/tokens.txt ("symbol id" lines, id 0 the CTC blank), and bpe.model for BPE.

    Example: ds2 tokens data/lang_char --type char-en
    """
    from ds2.text import BpeTokenizer, CharTokenizer

    if kind != "char-en" and text is None:
        raise click.UsageError(f"--type {kind} needs --text")
    lines = text.read_text(encoding="utf-8").splitlines() if text else []
    if kind == "char-en":
        tok = CharTokenizer()
    elif kind == "char":
        tok = CharTokenizer.from_texts(lines)
    else:
        tok = BpeTokenizer.train(lines, vocab_size)
    tok.save(lang_dir)
    click.echo(f"{lang_dir}/tokens.txt: {tok.vocab_size} tokens")
