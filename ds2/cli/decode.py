"""`ds2 decode` and `ds2 tune`: decode sets with a trained experiment, tune LM weights on dev."""

from __future__ import annotations

from pathlib import Path

import click

from ds2.decode.methods import METHODS


def decoding_options(f):
    """The options `ds2 decode` and `ds2 tune` share."""
    options = [
        click.option("--cuts", "cut_sets", multiple=True, required=True, metavar="NAME=PATH",
                     help="A set to decode, e.g. --cuts test=data/fbank/synth_cuts_test.jsonl.gz (repeatable)."),
        click.option("--method", default="greedy", type=click.Choice(METHODS), help="Decoding method."),
        click.option("--lm", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="KenLM model (binary or ARPA) of beam, and of nbest-rescore's first pass."),
        click.option("--rescore-lm", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="The larger KenLM model nbest-rescore rescores with."),
        click.option("--lang-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Folder of H.fst / HLG.fst / words.txt (ctc-graph, hlg)."),
        click.option("--params", "params_file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="JSON of tuned weights written by `ds2 tune` (overrides --alpha/--beta/--lm-scale)."),
        click.option("--beam", default=16, help="Prefixes kept per frame (beam, nbest-rescore)."),
        click.option("--alpha", default=0.8, help="LM weight (beam, nbest-rescore)."),
        click.option("--beta", default=1.0, help="Word bonus (beam, nbest-rescore)."),
        click.option("--nbest", default=16, help="Hypotheses rescored (nbest-rescore)."),
        click.option("--rescore-alpha", default=0.8, help="LM weight of nbest-rescore's second pass."),
        click.option("--rescore-beta", default=1.0, help="Word bonus of nbest-rescore's second pass."),
        click.option("--lm-scale", default=0.8, help="LM weight of hlg."),
        click.option("--graph-beam", default=14.0, help="kaldi-decoder beam in cost units (ctc-graph, hlg)."),
        click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Checkpoint to use [default: EXP_DIR/checkpoints/best.pt]."),
        click.option("--max-duration", default=300.0, help="Seconds of audio per acoustic-model batch."),
        click.option("--num-jobs", default=2, help="Processes that run the search."),
    ]
    for option in reversed(options):
        f = option(f)
    return click.argument("exp_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))(f)


def _options(params_file, search: dict):
    """DecodeOptions from the command line, with the weights of --params on top."""
    from ds2.decode.methods import DecodeOptions
    from ds2.decode.tune import read_params

    values = dict(search)
    method = values["method"]
    if params_file:
        tuned = read_params(params_file)
        # nbest-rescore's first pass is the beam search, so it also takes the beam's weights.
        if tuned["method"] != method and not (method == "nbest-rescore" and tuned["method"] == "beam"):
            raise click.UsageError(f"--params {params_file} was tuned for {tuned['method']}, not {method}")
        values.update(tuned["params"])
    try:
        opts = DecodeOptions(**values)
    except ValueError as e:
        raise click.UsageError(str(e))
    from ds2.lm.ngram import check_lm_file

    for option in ("lm", "rescore_lm"):
        if getattr(opts, option) and opts.method in ("beam", "nbest-rescore"):
            try:
                check_lm_file(getattr(opts, option))
            except ValueError as e:
                raise click.ClickException(f"--{option.replace('_', '-')}: {e}") from None
    return opts


def _checkpoint(exp_dir: Path, checkpoint: Path | None) -> Path:
    """The checkpoint decoding uses; a one-line error when EXP_DIR has none."""
    from ds2.checkpoint import find_checkpoint

    try:
        return find_checkpoint(checkpoint or exp_dir)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None


def _errors_in_one_line():
    """The errors decoding reports without a traceback: a decoder that cannot be built, an
    empty set, a missing file."""
    from ds2.decode.methods import DecoderError

    return DecoderError, ValueError, FileNotFoundError


def _sets(cut_sets):
    for spec in cut_sets:
        if "=" not in spec:
            raise click.UsageError(f"--cuts {spec!r} must be NAME=PATH")
        name, path = spec.split("=", 1)
        if not Path(path).exists():
            raise click.UsageError(f"--cuts {name}: {path} does not exist")
        yield name, path


@click.command("decode")
@decoding_options
def command(exp_dir, cut_sets, params_file, checkpoint, max_duration, num_jobs, **search):
    """Decode each --cuts set with EXP_DIR's model; write EXP_DIR/decode_NAME_METHOD/.

    Each decoding folder holds recogs.txt (ref/hyp per utterance), errs.txt (alignments
    and error tables) and wer.txt (%WER and %CER with ins/del/sub counts, the search's
    real-time factor per core, and the method's options). Every cut is decoded and scored: a
    reference the tokenizer cannot spell is scored as written (its unspellable words count as
    errors), a cut whose features cannot be loaded counts as deleting its whole reference, and
    wer.txt says how many of each. The acoustic model's log-probs are kept in EXP_DIR/logprobs/
    with the digests of the cuts file and checkpoint, and reused while both are unchanged.

    \b
    Examples:
      ds2 decode exp/ds2 --cuts test=data/fbank/synth_cuts_test.jsonl.gz
      ds2 decode exp/ds2 --method beam --lm data/lm/lm_3gram.bin --params data/lm/tuned_ds2_beam.json \\
          --cuts test=data/fbank/synth_cuts_test.jsonl.gz
      ds2 decode exp/ds2 --method hlg --lang-dir data/lang_char --cuts test=...
    """
    from ds2.decode.runner import decode_cuts

    opts = _options(params_file, search)
    checkpoint = _checkpoint(exp_dir, checkpoint)
    for name, path in _sets(cut_sets):
        try:
            wer, cer, out_dir = decode_cuts(exp_dir, path, name, opts, checkpoint, max_duration, num_jobs)
        except _errors_in_one_line() as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{out_dir}: {wer.line('WER')}  {cer.line('CER')}")


@click.command("tune")
@decoding_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON file for the chosen weights, e.g. data/lm/tuned_ds2_beam.json.")
def tune_command(exp_dir, cut_sets, params_file, checkpoint, max_duration, num_jobs, output, **search):
    """Choose METHOD's LM weights on one --cuts set (dev) by a grid search over WER.

    beam and nbest-rescore tune alpha (LM weight) and beta (word bonus); hlg tunes its
    lm-scale. nbest-rescore's first pass keeps the weights given (--params of the beam
    tuning). The winner and the whole grid go to --output, which `ds2 decode --params` reads.

    Example: ds2 tune exp/ds2 --method beam --lm data/lm/lm_3gram.bin \\
             --cuts dev=data/fbank/synth_cuts_dev.jsonl.gz --output data/lm/tuned_ds2_beam.json
    """
    from ds2.decode.runner import compute_log_probs
    from ds2.decode.tune import best_point, tune, write_params

    opts = _options(params_file, search)
    sets = list(_sets(cut_sets))
    if len(sets) != 1:
        raise click.UsageError("ds2 tune takes exactly one --cuts set (dev)")
    name, path = sets[0]
    checkpoint = _checkpoint(exp_dir, checkpoint)
    try:
        lp = compute_log_probs(exp_dir, path, name, checkpoint, max_duration)
        params, table = tune(lp, opts, num_jobs=num_jobs)
    except _errors_in_one_line() as e:
        raise click.ClickException(str(e)) from None
    if opts.method == "nbest-rescore":  # its file also carries the first pass's weights
        params = {"alpha": opts.alpha, "beta": opts.beta, **params}
    write_params(output, opts.method, params, table, name)
    best = best_point(table)
    click.echo(f"{output}: {' '.join(f'{k}={v}' for k, v in params.items())} "
               f"(dev %WER {best['wer']:.2f}, %CER {best['cer']:.2f})")
