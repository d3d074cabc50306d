"""`ds2 lm`: word n-gram language models (KenLM) and decoding graphs (OpenFst)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("lm")
def command():
    """Train n-gram LMs with KenLM (or import ready ARPA files) and build H/L/G/HLG graphs from them."""


@command.command("train")
@click.argument("text", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("lm_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--order", default=3, show_default=True, help="n-gram order: 2 to 6 (KenLM's highest as built here).")
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
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the graphs (and a copy of LANG_DIR's tokens) into this folder instead of LANG_DIR: "
                   "a second lang folder for another LM, e.g. data/lang_word for a Mandarin word LM beside "
                   "data/lang_char's character LM.")
def graph(lang_dir, arpa, out_dir):
    """Build H.fst, L.fst, G.fst and HLG.fst in LANG_DIR (which holds tokens.txt) from ARPA.

    L spells every word of the ARPA's vocabulary with LANG_DIR's tokens; G is the ARPA as
    an FST (kaldilm); HLG is composed, determinised and minimised with kaldifst. Also
    writes words.txt, lexicon.txt and unspelled.txt (the words the tokens cannot spell, left out of
    L and counted). Refuses an ARPA without a word the tokens can spell.

    With a word LM of Mandarin (words between spaces, `ds2 lm train --unit word`) and char-zh
    tokens, L spells each word with its characters and HLG's output is joined without spaces.

    \b
    Examples:
      ds2 lm graph data/lang_char data/lm/lm_3gram.arpa
      ds2 lm graph data/lang_char data/lm_word/lm_3gram.arpa --out-dir data/lang_word
    """
    from ds2.lm.hlg import build_graphs
    from ds2.text import load_tokenizer

    try:
        tokenizer = load_tokenizer(lang_dir)
        if out_dir is not None:
            tokenizer.save(out_dir)
        paths = build_graphs(out_dir or lang_dir, arpa, tokenizer)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    for p in paths.values():
        click.echo(f"{p} ({p.stat().st_size / 1e6:.1f} MB)")
    unspelled = (out_dir or lang_dir) / "unspelled.txt"
    count = len(unspelled.read_text(encoding="utf-8").splitlines())
    if count:
        click.echo(f"{unspelled}: {count} words of {arpa} the tokens cannot spell, left out of L")


@command.command("import")
@click.argument("arpa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("lm_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--order", type=int, required=True, help="n-gram order the ARPA must have (it names lm_<order>gram).")
@click.option("--lang-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Tokens the LM's words must be spelled with: the words are lower-cased when these tokens "
                   "spell more of them lower-cased than as they stand (without it: --case).")
@click.option("--case", type=click.Choice(["auto", "keep", "lower"]), default="auto", show_default=True,
              help="keep or lower-case the ARPA's words; auto: decided by --lang-dir (keep without it).")
@click.option("--binary-type", type=click.Choice(["auto", "probing", "trie"]), default="auto", show_default=True,
              help="KenLM binary structure: probing (fastest, largest) or trie (smallest); auto: trie above "
                   "20 M n-grams.")
@click.option("--dev-text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sentences to report perplexity on: a text file or a Lhotse supervision/cut manifest.")
def import_(arpa, lm_dir, order, lang_dir, case, binary_type, dev_text):
    """Use a ready ARPA file (plain or gzipped) as the ORDER-gram LM of LM_DIR instead of training one,
    e.g. LibriSpeech's official 3-gram.pruned.1e-7.arpa.gz and 4-gram.arpa.gz (OpenSLR 11).

    Writes LM_DIR/lm_<order>gram.arpa and lm_<order>gram.bin, as `ds2 lm train` does, so the graphs
    and decoders take it alike. The file is streamed: LMs of hundreds of millions of n-grams need
    no more memory than build_binary does. LibriSpeech's ARPAs are upper-case, the char-en and BPE
    tokens of normalised English lower-case: with --lang-dir the case follows the tokens.

    \b
    Example:
      ds2 lm import data/download/lm/3-gram.pruned.1e-7.arpa.gz data/lm --order 3 --lang-dir data/lang_char
    """
    from ds2.lm.ngram import import_arpa, load_lm, perplexity, read_texts, spelled_share
    from ds2.text import load_tokenizer

    try:
        if case == "auto" and lang_dir is not None:
            sampled, as_is, lower = spelled_share(arpa, load_tokenizer(lang_dir))
            case = "lower" if lower > as_is else "keep"
            click.echo(f"{case}: the tokens of {lang_dir} spell {as_is} of the first {sampled} words of {arpa} as "
                       f"they stand, {lower} lower-cased")
        out_arpa, binary = import_arpa(arpa, lm_dir, order, lowercase=case == "lower",
                                       binary_type=None if binary_type == "auto" else binary_type)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{out_arpa}\n{binary}")
    if dev_text:
        sentences = read_texts(dev_text)
        if not sentences:
            raise click.ClickException(f"--dev-text {dev_text} holds no sentence to measure perplexity on")
        click.echo(f"perplexity on {dev_text}: {perplexity(load_lm(binary), sentences):.1f} per word")
