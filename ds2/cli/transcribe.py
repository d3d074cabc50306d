"""`ds2 transcribe`: a trained model on audio files, outside any recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ds2.cli.decode import method_options
from ds2.decode.methods import METHODS


def _inputs(audio: tuple[str, ...], lists: tuple[str, ...]):
    """(id, source) pairs: AUDIO paths (id: the path as given), `-` (the bytes of stdin), and the
    lines of each --list file (`path` or `id path`, as in a Kaldi wav.scp of files)."""
    out = []
    for a in audio:
        out.append(("-", sys.stdin.buffer.read()) if a == "-" else (a, a))
    for name in lists:
        try:
            lines = (sys.stdin if name == "-" else open(name, encoding="utf-8")).read().splitlines()
        except OSError as e:
            raise click.UsageError(f"--list {name}: {e.strerror}") from None
        for n, line in enumerate(lines, 1):
            parts = line.split(maxsplit=1)
            if not parts or parts[0].startswith("#"):
                continue
            uid, path = (parts[0], parts[1].strip()) if len(parts) == 2 else (parts[0], parts[0])
            if name != "-" and not Path(path).is_absolute():  # relative to the list, like Kaldi's
                path = str(Path(name).parent / path) if not Path(path).exists() else path
            out.append((uid, path))
    return out


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
              help="A file of inputs, one per line: `path` or `id path` (`-`: read it from stdin). Repeatable.")
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
@click.option("--threads", type=click.IntRange(min=0), default=0, help="CPU threads (0: all).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="Where to write results.")
def command(model, audio, lists, method, fmt, backend, streaming, chunk_ms, partials, shard, batch_seconds, threads,
            output, **search):
    """Transcribe AUDIO files (any format and rate libsndfile reads: WAV, FLAC, OGG, MP3; several
    channels are mixed down, other rates resampled) with MODEL: an experiment folder of `ds2 train`
    or a checkpoint file (or, with --backend onnxruntime, a `ds2 export` folder).

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
    from ds2.infer.audio import AudioError, load_audio
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

    def streamed():
        rate = t.model.front_end.sampling_rate
        chunk = max(1, rate * chunk_ms // 1000)
        for uid, source in inputs:
            try:
                samples = load_audio(source, rate, name=uid)
                rec = t.stream()
                last = ""
                for start in range(0, len(samples), chunk):
                    text = rec.accept(samples[start:start + chunk])
                    if partials and text != last:
                        click.echo(f"{uid}\t{text}", err=True)
                        last = text
                yield uid, t.result(uid, rec.finish(), len(samples) / rate)
            except (AudioError, ValueError) as e:
                yield uid, e if isinstance(e, AudioError) else AudioError(f"{uid}: {e}")

    failed = 0
    results = streamed() if streaming else t.transcribe_many(inputs, batch_seconds)
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
