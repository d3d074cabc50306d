"""`ds2 tokens`: write the token inventory (`tokens.txt`) of a language folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("tokens")
@click.argument("lang_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--type", "kind", type=click.Choice(["char-en", "char-zh", "char", "bpe"]), default="char-en",
              help="char-en: blank + the 28 English characters; char-zh: <unk> + every character of the "
                   "training text (Mandarin: normalise it with ds2.text.normalize_mandarin; a character never "
                   "seen in training becomes <unk>); char: every character of the training text; bpe: a "
                   "sentencepiece model trained on the training text.")
@click.option("--text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Training text, one sentence per line (char and bpe).")
@click.option("--supervisions", "supervision_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Lhotse supervisions manifest whose texts are training text (char and bpe; repeatable, "
                   "and may be given with --text).")
@click.option("--vocab-size", default=500, show_default=True, help="BPE vocabulary size, blank included.")
def command(lang_dir, kind, text, supervision_files, vocab_size):
    """Write LANG_DIR/tokens.txt ("symbol id" lines, id 0 the CTC blank), and bpe.model for BPE.

    \b
    Examples:
      ds2 tokens data/lang_char --type char-en
      ds2 tokens data/lang_char --type char-zh --supervisions data/manifests/aishell_supervisions_train.jsonl.gz
      ds2 tokens data/lang_bpe_500 --type bpe --vocab-size 500 --text data/lm_text.txt
    """
    from ds2.text import BpeTokenizer, CharTokenizer

    if kind == "char-en":
        if text or supervision_files:
            raise click.UsageError("--type char-en has a fixed alphabet: drop --text and --supervisions")
        tok = CharTokenizer()
    else:
        lines = training_text(text, supervision_files)
        if not lines:
            raise click.UsageError(f"--type {kind} needs training text: give --text or --supervisions "
                                   "(the ones given hold no text)")
        if kind == "bpe":
            try:
                tok = BpeTokenizer.train(lines, vocab_size)
            except ValueError as e:
                raise click.UsageError(f"--vocab-size {vocab_size}: {e}") from None
        else:
            tok = CharTokenizer.from_texts(lines, unk=kind == "char-zh")
    tok.save(lang_dir)
    click.echo(f"{lang_dir}/tokens.txt: {tok.vocab_size} tokens")


def training_text(text: Path | None, supervision_files: tuple[Path, ...]) -> list[str]:
    """The non-empty lines of `text` and the non-empty texts of the supervisions manifests."""
    from lhotse import SupervisionSet

    lines = [ln for ln in text.read_text(encoding="utf-8").splitlines() if ln.strip()] if text else []
    for path in supervision_files:
        try:
            sups = SupervisionSet.from_file(path)
            lines += [s.text for s in sups if s.text and s.text.strip()]
        except Exception as e:  # noqa: BLE001 - lhotse raises many kinds for a file that is not a manifest
            raise click.ClickException(f"--supervisions {path} is not a Lhotse supervisions manifest "
                                       f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})")
    return lines
