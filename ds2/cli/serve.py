"""`ds2 serve`: a trained model as a recognition server (WebSocket streaming, upload, a page)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ds2.cli.decode import method_options
from ds2.decode.methods import METHODS


@click.command("serve")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="Port to listen on (0: any free one).")
@click.option("--method", default="greedy", type=click.Choice(METHODS),
              help="Decoding method of the final results (the partial texts are the best path). The LM and "
                   "tuned weights come from the experiment folder, as in `ds2 transcribe`.")
@method_options
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch",
              help="torch: MODEL is an experiment folder or checkpoint; onnxruntime: a `ds2 export --format onnx` "
                   "folder.")
@click.option("--threads", type=click.IntRange(min=0), default=1,
              help="CPU threads of each forward pass (0: all). Batching across streams carries the load; more "
                   "threads per pass cost more CPU per stream here (bench/serve_load.py).")
@click.option("--batching/--no-batching", default=True,
              help="Run the steps that are ready across streams as one forward pass (Batch Dispatch).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, help="Most streams in one forward pass.")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=10.0,
              help="How long a ready step waits for others to join its batch.")
@click.option("--step-ms", type=click.IntRange(min=10), default=100,
              help="Streams step in multiples of this much audio (steps of equal size batch together); the "
                   "partial text lags by up to this much.")
@click.option("--max-streams", type=click.IntRange(min=1), default=32,
              help="WebSocket streams at once; more are refused (close code 1013).")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=120.0,
              help="Seconds of audio per stream or uploaded file; a longer stream is closed (1008).")
@click.option("--idle-timeout", type=click.FloatRange(min=1), default=20.0,
              help="Seconds without a message before a stream is closed (1001).")
@click.option("--min-rate", type=click.FloatRange(min=0), default=0.5,
              help="Seconds of audio a stream must send per second the server waits for it, once it has waited "
                   "--rate-grace seconds; a slower stream is closed (1008 \"the audio arrives too slowly\"), so that "
                   "slow clients cannot hold the --max-streams slots (a microphone sends 1; 0: no such limit).")
@click.option("--rate-grace", type=click.FloatRange(min=0), default=10.0,
              help="Seconds the server waits for a stream's audio before --min-rate applies.")
@click.option("--header-timeout", type=click.FloatRange(min=0.1), default=10.0,
              help="Seconds a connection may take to send a request's line and headers (from its start, or from "
                   "the previous response on a kept-alive connection); then it is closed without an answer.")
@click.option("--shutdown-grace", type=click.FloatRange(min=0), default=5.0,
              help="On SIGTERM or Ctrl-C the server takes no new connections and gives the streams in progress this "
                   "many seconds to end (their final text); then it closes them (1001 \"the server is shutting "
                   "down\") and exits.")
@click.option("--max-upload-mb", type=click.IntRange(min=1), default=50, help="Largest uploaded file.")
@click.option("--upload-timeout", type=click.FloatRange(min=1), default=120.0,
              help="Seconds an uploaded file may take to arrive (after its headers); then HTTP 408.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="warning",
              help="What the server logs to stderr (info: a line per stream that ends).")
def command(model, host, port, method, backend, threads, batching, max_batch, batch_wait_ms, step_ms, max_streams,
            max_seconds, idle_timeout, min_rate, rate_grace, header_timeout, shutdown_grace, max_upload_mb,
            upload_timeout, log_level, **search):
    """Serve MODEL (an experiment folder or checkpoint; with --backend onnxruntime an export folder)
    for recognition: a page at http://HOST:PORT/ that listens to the microphone and shows the text
    as it grows, a WebSocket stream at /ws, uploads at POST /api/transcribe and GET /health. The
    protocol is in ds2/serve/__init__.py.

    A streaming model (forward-only, e.g. egs/synth/conf/ds2_streaming.yaml) gives partial texts
    while the audio arrives; a bidirectional one answers when the utterance ends. Prints
    `ds2 serve: listening on http://HOST:PORT` when ready; Ctrl-C stops it.

    \b
    Examples:
      ds2 serve egs/synth/exp/streaming              # then open http://127.0.0.1:8000/
      ds2 serve egs/synth/exp/streaming --method beam --port 9000
      curl -s --data-binary @a.wav http://127.0.0.1:8000/api/transcribe
    """
    from ds2.infer import ModelError
    from ds2.infer.transcriber import Transcriber
    from ds2.serve.app import Server
    from ds2.serve.limits import Limits

    logging.getLogger().setLevel(getattr(logging, log_level.upper()))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    ctx = click.get_current_context()  # the search options typed on the command line win over the tuned ones
    given = {k: v for k, v in search.items()
             if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    try:
        transcriber = Transcriber.load(model, method, backend, threads, **given)
    except (ModelError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    limits = Limits(max_streams=max_streams, max_seconds=max_seconds, idle_timeout=idle_timeout, min_rate=min_rate,
                    rate_grace=rate_grace, max_upload_bytes=max_upload_mb << 20, upload_timeout=upload_timeout,
                    header_timeout=header_timeout, shutdown_grace=shutdown_grace)
    name = "/".join(model.resolve().parts[-2:])  # e.g. exp/streaming: the page shows it
    server = Server(transcriber, name, limits, batching, max_batch, batch_wait_ms / 1000, step_ms)
    server.warm_up()
    try:
        asyncio.run(_serve(server, host, port))
    except OSError as e:  # the port is taken, the address is not this machine's, ...
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


async def _serve(server, host: str, port: int) -> None:
    from aiohttp import web

    runner = server.runner()
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if port == 0 else port  # noqa: SLF001 - the port 0 chose
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"ds2 serve: listening on http://{shown}:{bound}", err=True)
    sys.stderr.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await site.stop()  # no new connections
    click.echo(f"ds2 serve: stopping ({server.streams} streams in progress get up to "
               f"{server.limits.shutdown_grace:g} s to end)" if server.streams else "ds2 serve: stopping", err=True)
    await server.stop()
    await runner.cleanup()
