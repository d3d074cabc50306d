"""`ds2 decode` and `ds2 tune`: decode sets with a trained experiment, tune LM weights on dev.

The methods, their choices, needs and options come from the registry in ds2.decode.methods.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from click.core import ParameterSource

from ds2.data import EVAL_MAX_DURATION
from ds2.decode.methods import METHODS, REGISTRY, RESOURCES, DecodeOptions, option_fields

log = logging.getLogger(__name__)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _used_by(name: str) -> str:
    """' Needed by beam, nbest-rescore.' / ' Used by hlg.' from the registry."""
    if name in RESOURCES:
        users = [m.name for m in REGISTRY.values() if name in m.needs]
        return f" Needed by {', '.join(users)}; ignored by the other methods." if users else ""
    users = [m.name for m in REGISTRY.values() if name in m.settings or name in (m.grid or {})]
    return f" Used by {', '.join(users)}." if users else ""


def _method_options() -> list:
    """One click option per DecodeOptions field (its help from the field, its users from the registry)."""
    options = []
    for f in option_fields():
        help_text = f.metadata["help"] + _used_by(f.name)
        if f.name in RESOURCES:
            # not click.Path(exists=True): a resource the method does not need is ignored, even when missing
            kind = click.Path(file_okay=f.name != "lang_dir", dir_okay=f.name == "lang_dir")
            options.append(click.option(_flag(f.name), f.name, type=kind, default=None, help=help_text))
        else:
            options.append(click.option(_flag(f.name), f.name, type=type(f.default), default=f.default,
                                        help=help_text))
    return options


def methods_epilog() -> str:
    """The list of methods for --help: description, needs, tuned weights (from the registry)."""
    width = max(len(m) for m in METHODS)
    lines = ["Methods (--method), from the registry in ds2/decode/methods.py:", "", "\b"]
    for m in REGISTRY.values():
        extra = ["needs " + ", ".join(_flag(n) for n in m.needs) if m.needs else "needs nothing else"]
        extra.append(f"tuned: {', '.join(_flag(n) for n in m.grid)}" if m.grid else "nothing to tune")
        if m.first_pass:
            extra.append(f"its first pass takes {m.first_pass}'s tuned weights")
        lines += [f"  {m.name:<{width}}  {m.description}", f"  {'':<{width}}  ({'; '.join(extra)})"]
    return "\n".join(lines)


def _first_pass_note() -> str:
    return "; ".join(f"{m.name} also takes {m.first_pass}.json" for m in REGISTRY.values() if m.first_pass)


def method_options(f):
    """Decorate a command with one option per search setting of the registry (`ds2 transcribe`)."""
    for option in reversed(_method_options()):
        f = option(f)
    return f


def decoding_options(f):
    """The options `ds2 decode` and `ds2 tune` share."""
    options = [
        click.option("--cuts", "cut_sets", multiple=True, required=True, metavar="NAME=PATH",
                     help="A set to decode, e.g. --cuts test=data/fbank/synth_cuts_test.jsonl.gz (repeatable)."),
        click.option("--method", default="greedy", type=click.Choice(METHODS), help="Decoding method (listed below)."),
        click.option("--name", default=None, help="Name of this decoding [default: the method]: its folder "
                     "EXP_DIR/decode_<set>_<name>, its tuned weights EXP_DIR/tuned/<name>.json and its row in "
                     "RESULTS.md. For one method decoded with other resources, e.g. --method hlg --lang-dir "
                     "data/lang_word --name hlg-word beside the character LM's hlg."),
        *_method_options(),
        click.option("--params", "params_file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="JSON of tuned weights written by `ds2 tune`, used instead of those found in "
                          f"EXP_DIR/tuned/ (METHOD.json; {_first_pass_note()}). Options given on the command "
                          "line win over both."),
        click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Checkpoint to use [default: EXP_DIR/checkpoints/averaged.pt, else best.pt, else last.pt]."),
        click.option("--max-duration", default=EVAL_MAX_DURATION, help="Seconds of audio per acoustic-model batch."),
        click.option("--num-jobs", default=2, help="Processes that run the search."),
    ]
    for option in reversed(options):
        f = option(f)
    return click.argument("exp_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))(f)


def _options(exp_dir: Path, params_file, search: dict, own: bool = True,
             name: str | None = None) -> tuple[DecodeOptions, list[Path]]:
    """DecodeOptions in three layers: the defaults, then the tuned weights (`tuned_weights`:
    --params, or EXP_DIR/tuned/), then the options given on the command line; and the files
    the tuned weights came from."""
    from ds2.decode.tune import tuned_weights
    from ds2.lm.ngram import check_lm_file

    ctx = click.get_current_context()
    given = {k: v for k, v in search.items()
             if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    method = search["method"]
    try:
        weights, files = tuned_weights(exp_dir, method, params_file, own=own, name=name)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    overridden = sorted(set(weights) & set(given))
    if overridden:
        log.info("%s: given on the command line, not taken from the tuned weights: %s", method,
                 " ".join(f"{k}={given[k]}" for k in overridden))
    values = {**{k: v for k, v in search.items() if v is not None}, **weights, **given}
    try:
        opts = DecodeOptions(**values)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    for option in ("lm", "rescore_lm"):
        if option in REGISTRY[method].needs:
            try:
                check_lm_file(getattr(opts, option))
            except ValueError as e:
                raise click.ClickException(f"{_flag(option)}: {e}") from None
    return opts, files


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


def _name(name: str | None) -> str | None:
    """--name as a folder and file name takes it: a UsageError for one that is not a plain name."""
    import re

    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise click.UsageError(f"--name {name!r} must be letters, digits, '.', '_' and '-' (it names a folder)")
    return name


def _sets(cut_sets):
    for spec in cut_sets:
        if "=" not in spec:
            raise click.UsageError(f"--cuts {spec!r} must be NAME=PATH")
        name, path = spec.split("=", 1)
        if not Path(path).exists():
            raise click.UsageError(f"--cuts {name}: {path} does not exist")
        yield name, path


@click.command("decode", epilog=methods_epilog())
@decoding_options
def command(exp_dir, cut_sets, name, params_file, checkpoint, max_duration, num_jobs, **search):
    """Decode each --cuts set with EXP_DIR's model; write EXP_DIR/decode_<set>_<method>/ (or _<name>/ with --name).

    Each decoding folder holds recogs.txt (ref/hyp per utterance), errs.txt (alignments
    and error tables), wer.txt (%WER and %CER with ins/del/sub counts, the search's
    real-time factor per core, and the method's settings) and result.json (the same as data,
    which `ds2 results` reads). Every cut is decoded and scored: a
    reference the tokenizer cannot spell is scored as written (its unspellable words count as
    errors), a cut whose features cannot be loaded counts as deleting its whole reference, and
    wer.txt says how many of each. The acoustic model's log-probs are kept in EXP_DIR/logprobs/
    with the digests of the cuts file and checkpoint, and reused while both are unchanged.

    The LM weights are the defaults, then the tuned ones in EXP_DIR/tuned/METHOD.json when
    it exists (written by `ds2 tune`; nbest-rescore's first pass also takes
    EXP_DIR/tuned/beam.json), or those of --params FILE instead, then any given on the
    command line. --lm, --rescore-lm and --lang-dir that a method does not need are ignored,
    so one command line serves every method.

    \b
    Examples:
      ds2 decode exp/ds2 --cuts test=data/fbank/synth_cuts_test.jsonl.gz
      ds2 decode exp/ds2 --method beam --lm data/lm/lm_3gram.bin --cuts test=data/fbank/synth_cuts_test.jsonl.gz
      ds2 decode exp/ds2 --method hlg --lang-dir data/lang_char --cuts test=...
    """
    from ds2.decode.runner import decode_cuts

    name = _name(name)
    opts, files = _options(exp_dir, params_file, search, name=name)
    checkpoint = _checkpoint(exp_dir, checkpoint)
    for set_name, path in _sets(cut_sets):
        try:
            wer, cer, out_dir = decode_cuts(exp_dir, path, set_name, opts, checkpoint, max_duration, num_jobs, files,
                                            name)
        except _errors_in_one_line() as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{out_dir}: {wer.line('WER')}  {cer.line('CER')}")


@click.command("tune", epilog=methods_epilog())
@decoding_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default=False, help="JSON file for the chosen weights and the whole grid "
              "[default: EXP_DIR/tuned/METHOD.json, which `ds2 decode EXP_DIR --method METHOD` takes by itself].")
def tune_command(exp_dir, cut_sets, name, params_file, checkpoint, max_duration, num_jobs, output, **search):
    """Choose METHOD's LM weights on one --cuts set (dev) by a grid search over WER.

    beam tunes alpha (LM weight) and beta (word bonus), hlg its lm-scale, nbest-rescore the
    weights of its rescoring pass; the grids are the registry's. The winner and the whole grid
    go to EXP_DIR/tuned/METHOD.json (or --output), which `ds2 decode EXP_DIR --method METHOD`
    takes by itself. nbest-rescore's first pass takes EXP_DIR/tuned/beam.json (tune beam
    first; without it the first pass keeps the default weights, with a warning), or --params.
    A method with no weights to tune (greedy, ctc-graph) says so, writes nothing and exits 0.

    Example: ds2 tune exp/ds2 --method beam --lm data/lm/lm_3gram.bin \\
             --cuts dev=data/fbank/synth_cuts_dev.jsonl.gz
    """
    name = _name(name)
    method = REGISTRY[search["method"]]
    if not method.grid:
        click.echo(f"ds2 tune: {method.name} has no weights to tune; nothing written")
        return
    # imported once there is something to tune: the runner imports torch and Lhotse (seconds)
    from ds2.decode.runner import compute_log_probs
    from ds2.decode.tune import best_point, tuned_file, tune, write_params

    opts, _ = _options(exp_dir, params_file, search, own=False)
    sets = list(_sets(cut_sets))
    if len(sets) != 1:
        raise click.UsageError("ds2 tune takes exactly one --cuts set (dev)")
    set_name, path = sets[0]
    checkpoint = _checkpoint(exp_dir, checkpoint)
    try:
        lp = compute_log_probs(exp_dir, path, set_name, checkpoint, max_duration)
        params, table = tune(lp, opts, num_jobs=num_jobs)
    except _errors_in_one_line() as e:
        raise click.ClickException(str(e)) from None
    if method.first_pass:  # its file also carries the first pass's weights it was tuned with
        first = REGISTRY[method.first_pass]
        params = {**{k: getattr(opts, k) for k in first.grid or {}}, **params}
    output = output or tuned_file(exp_dir, name or method.name)
    write_params(output, method.name, params, table, set_name)
    best = best_point(table)
    rates = f"%CER {best['cer']:.2f}, %WER {best['wer']:.2f}" if best.get("primary") == "CER" else \
        f"%WER {best['wer']:.2f}, %CER {best['cer']:.2f}"
    click.echo(f"{output}: {' '.join(f'{k}={v}' for k, v in params.items())} (dev {rates})")
