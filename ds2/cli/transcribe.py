"""`ds2 transcribe`: a trained model on audio files, outside any recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ds2.cli.decode import method_options
from ds2.decode.methods import METHODS


LIST_FORMAT = ("a line is PATH, or ID PATH as in a Kaldi wav.scp of files; a line that names a file as a whole is "
               "a PATH, spaces and all; relative paths are from the list's folder")


def _inputs(audio: tuple[str, ...], lists: tuple[str, ...]):
    """(id, source) pairs: AUDIO paths (id: the path as given), `-` (the bytes of stdin), and the
    lines of each --list file (LIST_FORMAT; an AudioError naming the line for one naming no file)."""
    out = []
    for a in audio:
        out.append(("-", sys.stdin.buffer.read()) if a == "-" else (a, a))
    for name in lists:
        try:
            lines = (sys.stdin if name == "-" else open(name, encoding="utf-8")).read().splitlines()
        except OSError as e:
            raise click.UsageError(f"--list {name}: {e.strerror}") from None
        for n, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(_list_line(name, n, line.strip()))
    return out


def _list_line(name: str, n: int, line: str):
    """(id, path) of line `n` of the list `name`, or (line, AudioError naming the line)."""
    from ds2.infer.audio import AudioError

    def found(path: str) -> str | None:  # as given, or relative to the list's folder (as Kaldi's)
        tries = [Path(path)] + ([Path(name).parent / path] if name != "-" and not Path(path).is_absolute() else [])
        return next((str(p) for p in tries if p.exists()), None)

    parts = line.split(maxsplit=1)
    if found(line):
        return line, found(line)
    if len(parts) == 2 and found(parts[1]):
        return parts[0], found(parts[1])
    also = f' (nor "{parts[1]}", after the id "{parts[0]}")' if len(parts) == 2 else ""
    return line, AudioError(f'--list {name} line {n} "{line}": no such file{also}; relative paths are from the '
                            f"list's folder or the current one")


def _shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not I/N (e.g. 0/4)", param_hint="--shard") from None
    if not (n >= 1 and 0 <= i < n):
        raise click.BadParameter(f"{text}: need N >= 1 and 0 <= I < N", param_hint="--shard")
    return i, n


@click.command("transcribe")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("audio", nargs=-1)
@click.option("--list", "lists", multiple=True, metavar="FILE",
              help=f"A file of inputs, one per line ({LIST_FORMAT}; # starts a comment). `-`: read it from stdin. "
                   f"Repeatable.")
@click.option("--method", default="greedy", type=click.Choice(METHODS),
              help="Decoding method (see `ds2 decode --help`). Its LM, graphs and tuned weights come from MODEL's "
                   "experiment folder (EXP/tuned/ and the decodings in EXP/decode_*_METHOD/) unless given.")
@method_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text: `id<TAB>text` lines; json: one JSON object per line with words, times and confidences.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch",
              help="torch: MODEL is an experiment folder or checkpoint; onnxruntime: MODEL is a folder written by "
                   "`ds2 export --format onnx` (no torch needed).")
@click.option("--streaming", is_flag=True,
              help="Feed each file to the model in --chunk-ms chunks, as live audio (forward-only models with a row "
                   "convolution); the final text is the same as without.")
@click.option("--chunk-ms", type=click.IntRange(min=1), default=200, help="Chunk length of --streaming.")
@click.option("--partials", is_flag=True, help="With --streaming, print each growing partial text to stderr.")
@click.option("--shard", default=None, metavar="I/N",
              help="Transcribe only inputs I, I+N, I+2N, ... (0 <= I < N), e.g. --shard $SLURM_ARRAY_TASK_ID/8.")
@click.option("--batch-seconds", type=click.FloatRange(min=1), default=60.0,
              help="Seconds of audio per acoustic-model batch.")
@click.option("--window-seconds", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Audio longer than this is read, run and decoded a piece at a time, in memory that does not grow "
                   "with its length: a forward-only model streams it, another runs on windows of this length that "
                   "overlap by a quarter, joined at a pause; the text is decoded in segments of at most this length, "
                   "cut at pauses, and joined.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="CPU threads (0: all).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="Where to write results.")
def command(model, audio, lists, method, fmt, backend, streaming, chunk_ms, partials, shard, batch_seconds,
            window_seconds, threads, output, **search):
    """Transcribe AUDIO files (any format and rate libsndfile reads: WAV, FLAC, OGG, MP3; several
    channels are mixed down, other rates resampled) with MODEL: an experiment folder of `ds2 train`
    or a checkpoint file (or, with --backend onnxruntime, a `ds2 export` folder).

    A file longer than --window-seconds is read, run and decoded a piece at a time, so an hour
    takes about the memory of a minute.

    Each input gets one line on stdout, in input order. An input that cannot be read (missing,
    corrupt, empty, too short) gets one line on stderr naming it; the others are still transcribed,
    and the exit status is 1.

    \b
    Examples:
      ds2 transcribe egs/synth/exp/ds2 a.wav b.flac
      ds2 transcribe egs/synth/exp/ds2 --method beam --format json --list wav.scp
      sox in.mp3 -t wav - | ds2 transcribe egs/synth/exp/ds2 -
      ds2 transcribe egs/synth/exp/streaming --streaming --chunk-ms 200 --partials a.wav
      ds2 transcribe egs/synth/exp/ds2 --list all.txt --shard 3/8 > part3.txt   # array job 3 of 8
    """
    from ds2.infer.transcriber import Transcriber
    from ds2.infer import ModelError

    i, n = _shard(shard)
    inputs = _inputs(audio, lists)[i::n]
    if not audio and not lists:
        raise click.UsageError("give AUDIO files, `-` for stdin, or --list FILE")
    ctx = click.get_current_context()  # the search options typed on the command line win over the tuned ones
    given = {k: v for k, v in search.items()
             if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    try:
        t = Transcriber.load(model, method, backend, threads, **given)
        if streaming and not t.model.streaming:
            raise ModelError(f"{model} cannot stream: {t.model.streaming_problem}")
    except (ModelError, FileNotFoundError, ValueError) as e:  # CheckpointError is a ValueError (importing
        # ds2.checkpoint would import torch, which --backend onnxruntime must not need)
        raise click.ClickException(str(e)) from None

    last = {}

    def partial(uid: str, text: str):
        if text != last.get(uid, ""):
            click.echo(f"{uid}\t{text}", err=True)
            last[uid] = text

    failed = 0
    t.window_seconds = window_seconds
    results = t.transcribe_many(inputs, batch_seconds, chunk_ms / 1000 if streaming else 0.0,
                                partial if streaming and partials else None)
    for uid, result in results:
        if isinstance(result, Exception):
            failed += 1
            click.echo(f"ds2 transcribe: {result}", err=True)
            continue
        output.write((result.to_json() if fmt == "json" else f"{uid}\t{result.text}") + "\n")
        output.flush()
    if failed:
        click.echo(f"ds2 transcribe: {failed} of {len(inputs)} inputs could not be transcribed (named above)", err=True)
        sys.exit(1)
