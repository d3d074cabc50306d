"""Choose a method's LM weights on dev: alpha/beta for beam and nbest-rescore, lm_scale for hlg.

    ds2 tune exp/ds2 --method beam --lm data/lm/lm_3gram.bin --cuts dev=data/fbank/synth_cuts_dev.jsonl.gz \\
        --output data/lm/tuned_ds2_beam.json

A grid over the weights, scored by dev WER (CER breaks ties); the winner is written as
JSON that `ds2 decode --params` reads. nbest-rescore tunes its second pass only: give it
the beam's tuned file with --params so its first pass is the tuned beam search.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

from ds2.atomic import write_text_atomic
from ds2.decode.methods import DecodeOptions, DecoderPool
from ds2.score import score

log = logging.getLogger(__name__)

GRIDS = {
    "beam": {"alpha": [0.3, 0.45, 0.6, 0.8, 1.0], "beta": [0.0, 1.0, 2.0, 3.0, 4.0]},
    "nbest-rescore": {"rescore_alpha": [0.4, 0.6, 0.8, 1.0, 1.3], "rescore_beta": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
    "hlg": {"lm_scale": [0.6, 0.8, 1.0, 1.3, 1.6, 2.0]},
}


def tune(lp, opts: DecodeOptions, grid: dict[str, list[float]] | None = None,
         num_jobs: int = 1) -> tuple[dict[str, float], list[dict]]:
    """The grid point of lowest WER on the log-probs `lp` (a runner.LogProbs), and every point's scores.

    nbest-rescore keeps its first pass (the beam search) at `opts.alpha`/`opts.beta` and
    tunes only the rescoring weights, so its n-best lists are computed once.
    """
    grid = grid or GRIDS.get(opts.method)
    if not grid:
        raise ValueError(f"--method {opts.method} has no weights to tune; choose from {', '.join(GRIDS)}")
    names = list(grid)
    refs = lp.refs
    table = []
    with DecoderPool(opts, lp.tokenizer, num_jobs) as pool:
        if opts.method == "nbest-rescore":
            hyps_of = _rescoring_grid(lp, opts, pool)
        else:
            def hyps_of(point):
                return lp.hyps(pool.decode(lp.log_probs, **point)[0] if lp.log_probs else [])
        for values in itertools.product(*(grid[n] for n in names)):
            point = dict(zip(names, values))
            wer, cer = score(refs, hyps_of(point))
            table.append({**point, "wer": round(wer.rate, 3), "cer": round(cer.rate, 3)})
            log.info("%s: %%WER %.2f %%CER %.2f", " ".join(f"{k}={v}" for k, v in point.items()),
                     wer.rate, cer.rate)
    best = best_point(table)
    return {n: best[n] for n in names}, table


def best_point(table: list[dict]) -> dict:
    """The grid point of lowest WER (CER breaks ties)."""
    return min(table, key=lambda r: (r["wer"], r["cer"]))


def _rescoring_grid(lp, opts: DecodeOptions, pool: "DecoderPool"):
    """hyps_of(point) for nbest-rescore from n-best lists made once (in `pool`, a beam search)."""
    from ds2.lm.ngram import LOG10_TO_LN, load_lm

    nbests = pool.nbest(lp.log_probs, opts.nbest)
    big = load_lm(opts.rescore_lm)
    lm_score = {text: big.score(text, bos=True, eos=True) * LOG10_TO_LN
                for nbest in nbests for text, _, _ in nbest}

    def hyps_of(point):
        a, b = point["rescore_alpha"], point["rescore_beta"]
        return lp.hyps([max(nb, key=lambda h: h[1] + a * lm_score[h[0]] + b * h[2])[0] if nb else ""
                        for nb in nbests])
    return hyps_of


def write_params(path: str | Path, method: str, params: dict, table: list[dict], set_name: str):
    """The chosen weights (and the whole grid) as JSON, written atomically."""
    best = best_point(table)
    write_text_atomic(path, json.dumps({"method": method, "tuned_on": set_name, "params": params,
                                        "dev_wer": best["wer"], "dev_cer": best["cer"], "grid": table}, indent=1))


def read_params(path: str | Path) -> dict:
    """{"method": ..., "params": {...}} of a file written by `write_params`."""
    return json.loads(Path(path).read_text())
