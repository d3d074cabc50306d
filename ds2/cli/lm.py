"""`ds2 lm`: word n-gram language models (KenLM) and decoding graphs (OpenFst)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("lm")
def command():
    """Train n-gram LMs with KenLM and build H/L/G/HLG graphs from them."""


@command.command("train")
@click.argument("text", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("lm_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--order", default=3, help="n-gram order.")
@click.option("--prune", default="", help="lmplz count thresholds per order, e.g. '0 0 1' drops "
                                          "trigram singletons (empty: no pruning).")
@click.option("--dev-text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sentences to report perplexity on: a text file or a Lhotse supervision/cut manifest.")
@click.option("--unit", type=click.Choice(["word", "char"]), default="word", show_default=True,
              help="word: the words of TEXT (split at spaces); char: every character but spaces is a word "
                   "(a character n-gram, for text without word boundaries such as Mandarin).")
def train(text, lm_dir, order, prune, dev_text, unit):
    """Estimate an ORDER-gram on TEXT into LM_DIR. TEXT is a text file (one sentence per line) or
    a Lhotse supervision/cut manifest (its texts); it needs at least two sentences.

    Writes LM_DIR/lm_<order>gram.arpa and LM_DIR/lm_<order>gram.bin (KenLM binary), and
    prints the perplexity on --dev-text. Needs KenLM's lmplz and build_binary
    (tools/install_kenlm.sh builds them; `make demo` and `make test` run it).

    \b
    Examples:
      ds2 lm train data/manifests/synth_lm_text.txt data/lm --order 3 \\
        --dev-text data/manifests/synth_supervisions_dev.jsonl.gz
      ds2 lm train data/manifests/aishell_supervisions_train.jsonl.gz data/lm --unit char
    """
    from ds2.lm.ngram import load_lm, perplexity, read_texts, train_ngram

    try:
        thresholds = [int(x) for x in prune.split()] if prune else None
        arpa, binary = train_ngram(text, lm_dir, order, thresholds, unit=unit)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise click.ClickException(str(e))
    click.echo(f"{arpa}\n{binary}")
    if dev_text:
        sentences = read_texts(dev_text)
        if not sentences:
            raise click.ClickException(f"--dev-text {dev_text} holds no sentence to measure perplexity on")
        ppl = perplexity(load_lm(binary), sentences, unit)
        click.echo(f"perplexity on {dev_text}: {ppl:.1f} per {unit}")


@command.command("graph")
@click.argument("lang_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("arpa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def graph(lang_dir, arpa):
    """Build H.fst, L.fst, G.fst and HLG.fst in LANG_DIR (which holds tokens.txt) from ARPA.

    L spells every word of the ARPA's vocabulary with LANG_DIR's tokens; G is the ARPA as
    an FST (kaldilm); HLG is composed, determinised and minimised with kaldifst. Also
    writes words.txt and lexicon.txt. Refuses an ARPA without a word the tokens can spell.

    Example: ds2 lm graph data/lang_char data/lm/lm_3gram.arpa
    """
    from ds2.lm.graph import build_graphs
    from ds2.text import load_tokenizer

    try:
        paths = build_graphs(lang_dir, arpa, load_tokenizer(lang_dir))
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    for p in paths.values():
        click.echo(f"{p} ({p.stat().st_size / 1e6:.1f} MB)")
