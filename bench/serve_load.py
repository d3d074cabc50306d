"""Load on `ds2 serve`: N concurrent streams at real-time pace, with on-the-fly batching on and off.

    python bench/serve_load.py egs/synth/exp/streaming [--streams 1,4,16,32] [--utterances 3]

For each setting a fresh server (`ds2 serve MODEL --port 0`, 127.0.0.1 only) gets N clients at
once; each client streams `--utterances` utterances one after another (a new connection each,
16-bit PCM at 16 kHz in 100 ms chunks at real-time pace; the clients start spread over the first
second). Reported per setting:
- final latency: from the client's end message to the final result (median and p95 over all
  utterances), what a user waits for after they stop speaking, on top of the model's look-ahead;
- server CPU per stream: the server process's CPU time (user + system, /proc) over the run,
  divided by the run's wall time and by N, in % of one core;
- mean batch: streams per forward pass (the server's /health);
- the ratio of each latency to batching's at the same N.
The clients run in this process on the same machine, so they share its cores with the server.
Audio: espeak-ng reads a fixed list of sentences (bench/transcribe.py's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ds2.report import cpu_description

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcribe import load_audio  # noqa: E402 - bench/transcribe.py's audio


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def one_client(url: str, audio: list[np.ndarray], utterances: int, delay: float, rng: random.Random,
                     session):
    from ds2.serve.testing import stream

    await asyncio.sleep(delay)
    results = []
    for _ in range(utterances):
        x = audio[rng.randrange(len(audio))]
        results.append(await stream(url, x, 16000, chunk_ms=100, pace=1.0, session=session))
    return results


async def load(url: str, n: int, audio: list[np.ndarray], utterances: int, seed: int):
    import aiohttp

    rng = random.Random(seed)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [one_client(url, audio, utterances, rng.random(), random.Random(seed + i), session)
                 for i in range(n)]
        per_client = await asyncio.gather(*tasks)
        health = await (await session.get(url + "/health")).json()
    return [r for rs in per_client for r in rs], health


def run_setting(model: str, n: int, batching: bool, audio, utterances: int, threads: int, backend: str) -> dict:
    from ds2.serve.testing import running_server

    options = ["--max-streams", max(32, n), "--threads", threads, "--backend", backend]
    if not batching:
        options.append("--no-batching")
    with running_server(model, *options) as (url, proc):
        before, start = cpu_seconds(proc.pid), time.monotonic()
        results, health = asyncio.run(load(url, n, audio, utterances, seed=n))
        wall, cpu = time.monotonic() - start, cpu_seconds(proc.pid) - before
    failed = [r for r in results if r.final is None]
    latencies = sorted(1000 * r.latency for r in results if r.final is not None)
    return {
        "n": n, "batching": batching, "utterances": len(results), "failed": len(failed),
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))] if latencies else float("nan"),
        "cpu_per_stream": 100 * cpu / wall / n, "mean_batch": health["mean_batch"],
        "errors": sorted({r.error for r in failed if r.error}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a streaming model: experiment folder or checkpoint")
    parser.add_argument("--streams", default="1,4,16,32", help="numbers of concurrent streams")
    parser.add_argument("--utterances", type=int, default=3, help="utterances per client, one after another")
    parser.add_argument("--threads", type=int, default=1, help="the server's model threads (ds2 serve --threads)")
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                        help="onnxruntime: MODEL is a `ds2 export --format onnx` folder")
    parser.add_argument("--num-audio", type=int, default=8, help="distinct sentences")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        audio = load_audio(None, args.num_audio, 16000, Path(tmp))
    seconds = sum(len(x) for x in audio) / len(audio) / 16000
    print(f"# ds2 serve under load: {args.model} ({args.backend}, --threads {args.threads}); CPU: {cpu_description()}, {os.cpu_count()} cores; "
          f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'default')}")
    print(f"# {args.utterances} utterances per client of {seconds:.1f} s on average, at real-time pace in "
          f"100 ms chunks; clients and server share this machine\n")
    print("| streams | batching | final latency median (ms) | p95 (ms) | p95 / batching's | server CPU per stream "
          "(% of a core) | streams per forward pass | failed |")
    print("|---:|:---|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in args.streams.split(",")]:
        rows = [run_setting(args.model, n, b, audio, args.utterances, args.threads, args.backend) for b in (True, False)]
        for row in rows:
            ratio = row["p95"] / rows[0]["p95"]
            print(f"| {n} | {'on' if row['batching'] else 'off'} | {row['median']:.0f} | {row['p95']:.0f} | "
                  f"{ratio:.2f} | {row['cpu_per_stream']:.1f} | {row['mean_batch']:.2f} | "
                  f"{row['failed']}/{row['utterances']} |", flush=True)
            for e in row["errors"]:
                print(f"#   error: {e}")


if __name__ == "__main__":
    main()
