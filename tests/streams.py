"""Many streams of one model run in lockstep, their steps batched as a server batches them."""

from __future__ import annotations

import numpy as np

from ds2.infer.stream import StreamingRecognizer, run_steps


def lockstep(model, audios: list[np.ndarray], chunk: int, quantum: int = 0, stagger: int = 1):
    """Feed each audio in chunks of `chunk` samples, all streams at once, each starting `stagger`
    chunks after the one before; every round runs the ready steps of all streams with one
    `run_steps`. Returns (each stream's log-probs, the batch sizes of the forward passes)."""
    recs = [StreamingRecognizer(model) for _ in audios]
    positions = [-i * stagger * chunk for i in range(len(audios))]
    done = [False] * len(audios)
    sizes = []
    real_step = model.stream_step

    def counting_step(feats, valid_until, state):
        sizes.append(len(feats))
        return real_step(feats, valid_until, state)

    model.stream_step = counting_step
    try:
        while not all(done):
            steps = []
            for i, (rec, x) in enumerate(zip(recs, audios)):
                if done[i]:
                    continue
                p = positions[i]
                positions[i] += chunk
                if p < 0:
                    continue
                if p >= len(x):
                    steps.append((rec, rec.final_step()))
                    done[i] = True
                    continue
                rec.push(x[p:p + chunk])
                step = rec.next_step(quantum)
                if step is not None:
                    steps.append((rec, step))
            run_steps(model, steps)
    finally:
        model.stream_step = real_step
    return [rec.result() for rec in recs], sizes
