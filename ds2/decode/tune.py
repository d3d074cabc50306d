"""Choose a method's LM weights on dev, and find the tuned weights a decoding takes.

    ds2 tune exp/ds2 --method beam --lm data/lm/lm_3gram.bin --cuts dev=data/fbank/synth_cuts_dev.jsonl.gz

A grid over the weights (the method's `grid` in the registry, ds2.decode.methods), scored
by dev WER (CER breaks ties), or by dev CER for text without word boundaries (Mandarin); the winner is written as JSON to `EXP/tuned/<method>.json`,
which `ds2 decode EXP --method <method>` then takes by itself. nbest-rescore tunes its
second pass only; its first pass takes the beam search's tuned weights
(`EXP/tuned/beam.json`, the registry's `first_pass`).
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

from ds2.atomic import write_text_atomic
from ds2.decode.methods import DecodeOptions, DecoderPool, method, option_fields
from ds2.lm.ngram import lm_unit
from ds2.score import primary_rate, score

log = logging.getLogger(__name__)

TUNED_DIR = "tuned"  # EXP/tuned/<method>.json: the weights `ds2 tune` chose for a method


def tune(lp, opts: DecodeOptions, grid: dict[str, list[float]] | None = None,
         num_jobs: int = 1) -> tuple[dict[str, float], list[dict]]:
    """The grid point of lowest WER (CER for a tokenizer without word boundaries) on the log-probs
    `lp` (a runner.LogProbs), and every point's scores (rows with "wer", "cer" and "primary").

    `grid` defaults to the method's grid in the registry. nbest-rescore keeps its first pass
    (the beam search) at `opts.alpha`/`opts.beta` and tunes only the rescoring weights, so its
    n-best lists are computed once.
    """
    m = method(opts.method)
    grid = grid or m.grid
    if not grid:
        raise ValueError(f"--method {opts.method} has no weights to tune")
    names = list(grid)
    refs = lp.refs
    primary = primary_rate(lm_unit(lp.tokenizer))
    table = []
    with DecoderPool(opts, lp.tokenizer, num_jobs) as pool:
        if not lp.log_probs:
            def texts_of(point):
                return []
        elif m.grid_texts is not None:
            texts_of = m.grid_texts(lp.log_probs, opts, pool)
        else:
            def texts_of(point):
                return pool.decode(lp.log_probs, **point)[0]
        for values in itertools.product(*(grid[n] for n in names)):
            point = dict(zip(names, values))
            wer, cer = score(refs, lp.hyps(texts_of(point)))
            table.append({**point, "wer": round(wer.rate, 3), "cer": round(cer.rate, 3), "primary": primary})
            log.info("%s: %%WER %.2f %%CER %.2f", " ".join(f"{k}={v}" for k, v in point.items()),
                     wer.rate, cer.rate)
    best = best_point(table)
    return {n: best[n] for n in names}, table


def best_point(table: list[dict]) -> dict:
    """The grid point of lowest WER (CER breaks ties), or of lowest CER (WER breaks ties) where the
    rows say CER is the primary rate."""
    if table and table[0].get("primary") == "CER":
        return min(table, key=lambda r: (r["cer"], r["wer"]))
    return min(table, key=lambda r: (r["wer"], r["cer"]))


def tuned_file(exp_dir: str | Path, method_name: str) -> Path:
    """Where `ds2 tune` keeps a method's weights by default: EXP/tuned/<method>.json."""
    return Path(exp_dir) / TUNED_DIR / f"{method_name}.json"


def write_params(path: str | Path, method_name: str, params: dict, table: list[dict], set_name: str):
    """The chosen weights (and the whole grid) as JSON, written atomically."""
    best = best_point(table)
    write_text_atomic(path, json.dumps({"method": method_name, "tuned_on": set_name, "params": params,
                                        "dev_wer": best["wer"], "dev_cer": best["cer"], "grid": table}, indent=1))


def read_params(path: str | Path) -> dict:
    """{"method": ..., "params": {...}} of a file written by `write_params`."""
    return json.loads(Path(path).read_text())


def tuned_weights(exp_dir: str | Path, method_name: str, params_file: str | Path | None = None,
                  own: bool = True, name: str | None = None) -> tuple[dict, list[Path]]:
    """The tuned weights decoding with `method_name` takes, and the files they came from.
    `name` (default: the method) names the method's own file, `EXP/tuned/<name>.json`.

    With `params_file` (`--params`), that file alone: it must have been tuned for the method or
    for the method its first pass is (nbest-rescore: beam). Without it: the first pass's
    `EXP/tuned/<first_pass>.json` (a warning when missing: the first pass then runs with
    untuned weights), then, when `own`, the method's `EXP/tuned/<method>.json` on top, each
    when it exists; the files used are logged. `ds2 tune` passes own=False: it chooses the
    method's own weights itself.
    Raises ValueError for a file tuned for another method.
    """
    m = method(method_name)
    own_file = tuned_file(exp_dir, name or method_name)
    accepted = {method_name} | ({m.first_pass} if m.first_pass else set())
    if params_file is not None:
        files = [Path(params_file)]
    else:
        files = []
        if m.first_pass:
            first = tuned_file(exp_dir, m.first_pass)
            if first.is_file():
                files.append(first)
            else:
                log.warning("%s does not exist: the first pass of %s (a %s search) runs with untuned weights "
                            "(the defaults, unless given); run `ds2 tune %s --method %s` first",
                            first, method_name, m.first_pass, exp_dir, m.first_pass)
        if own and m.grid:
            if own_file.is_file():
                files.append(own_file)
            else:
                log.info("%s does not exist (`ds2 tune` writes it): %s decodes with the weights given",
                         own_file, name or method_name)
    weights = {}
    for path in files:
        tuned = read_params(path)
        if tuned.get("method") not in accepted:
            raise ValueError(f"{path} was tuned for {tuned.get('method')}, not {method_name}")
        unknown = set(tuned["params"]) - {f.name for f in option_fields()}
        if unknown:
            raise ValueError(f"{path}: {', '.join(sorted(unknown))} is not a decoding option")
        weights.update(tuned["params"])
        log.info("%s: weights %s from %s", method_name,
                 " ".join(f"{k}={v}" for k, v in tuned["params"].items()), path)
    return weights, files
