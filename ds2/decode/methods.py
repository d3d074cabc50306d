"""Decoding methods behind one narrow interface: (T, V) log-probs in, text out.

    greedy         best path (argmax per frame)
    beam           DS2 prefix beam search with a KenLM word LM (alpha, beta)
    ctc-graph      H (CTC topology) with kaldi-decoder: beam search without lexicon or LM
    hlg            HLG (CTC topology o lexicon o n-gram G) with kaldi-decoder
    nbest-rescore  the beam search's n best rescored with a larger KenLM (e.g. a 4-gram)

`decode_many` runs a method over many utterances in parallel processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ds2.decode.greedy import greedy_ids
from ds2.lm.ngram import LOG10_TO_LN
from ds2.text import Tokenizer, tokenizer_from_dict

METHODS = ("greedy", "beam", "ctc-graph", "hlg", "nbest-rescore")


@dataclass
class DecodeOptions:
    """Everything a method needs besides the log-probs; unused fields are ignored."""

    method: str = "greedy"
    lm: str | None = None  # KenLM model of beam and of nbest-rescore's first pass
    rescore_lm: str | None = None  # the larger KenLM model of nbest-rescore
    lang_dir: str | None = None  # H.fst, HLG.fst and words.txt of the graph methods
    beam: int = 16  # prefixes kept by the beam search
    alpha: float = 0.8  # LM weight of beam / nbest-rescore
    beta: float = 1.0  # word bonus of beam / nbest-rescore
    nbest: int = 16  # hypotheses rescored by nbest-rescore
    rescore_alpha: float = 0.8  # LM weight of nbest-rescore's second pass (with rescore_lm)
    rescore_beta: float = 1.0  # word bonus of nbest-rescore's second pass
    lm_scale: float = 0.8  # LM weight of hlg (the log-probs are divided by it)
    graph_beam: float = 14.0  # kaldi-decoder beam (cost units); 16 gave the same WER on egs/synth at 1.5-2x the time
    max_active: int = 3000  # kaldi-decoder's most active states per frame

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown decoding method {self.method!r}; choose from {', '.join(METHODS)}")
        needs = {"beam": ["lm"], "nbest-rescore": ["lm", "rescore_lm"], "ctc-graph": ["lang_dir"],
                 "hlg": ["lang_dir"]}.get(self.method, [])
        for name in needs:
            if not getattr(self, name):
                raise ValueError(f"--method {self.method} needs --{name.replace('_', '-')}")

    def replace(self, **changes) -> "DecodeOptions":
        return dataclasses.replace(self, **changes)


class Greedy:
    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    def decode(self, log_probs: np.ndarray) -> str:
        lp = torch.from_numpy(log_probs)[None]
        (ids,) = greedy_ids(lp, torch.tensor([lp.shape[1]]), self.tokenizer.blank_id)
        return " ".join(self.tokenizer.decode(ids).split())


class NbestRescorer:
    """First pass: prefix beam search; second: log p_ctc + alpha * log p_bigLM + beta * words."""

    def __init__(self, search, big_lm, alpha: float, beta: float, n: int):
        self.search, self.big_lm, self.alpha, self.beta, self.n = search, big_lm, alpha, beta, n

    def set_params(self, rescore_alpha: float | None = None, rescore_beta: float | None = None):
        """Weights of the rescoring pass (the first pass keeps its own)."""
        self.alpha = self.alpha if rescore_alpha is None else rescore_alpha
        self.beta = self.beta if rescore_beta is None else rescore_beta

    def decode(self, log_probs: np.ndarray) -> str:
        best, best_score = "", -float("inf")
        for text, ctc, words in self.search.nbest(log_probs, self.n):
            score = ctc + self.alpha * self.big_lm.score(text, bos=True, eos=True) * LOG10_TO_LN + self.beta * words
            if score > best_score:
                best, best_score = text, score
        return best


class DecoderError(Exception):
    """A method's decoder cannot be built (an LM or graph that cannot be read)."""


def build_decoder(opts: DecodeOptions, tokenizer: Tokenizer):
    """An object with `.decode(log_probs) -> text` for `opts.method`; DecoderError (one line, naming
    the file) when its LM or graph cannot be loaded."""
    try:
        return _build_decoder(opts, tokenizer)
    except Exception as e:  # noqa: BLE001 - kenlm/kaldifst raise plain OSError/RuntimeError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DecoderError(f"cannot load the {opts.method} decoder: {first}") from None


def _build_decoder(opts: DecodeOptions, tokenizer: Tokenizer):
    if opts.method == "greedy":
        return Greedy(tokenizer)
    if opts.method in ("beam", "nbest-rescore"):
        from ds2.decode.beam import BeamOptions, PrefixBeamSearch
        from ds2.lm.ngram import load_lm

        search = PrefixBeamSearch(tokenizer, load_lm(opts.lm),
                                  BeamOptions(beam=opts.beam, alpha=opts.alpha, beta=opts.beta))
        if opts.method == "beam":
            return search
        return NbestRescorer(search, load_lm(opts.rescore_lm), opts.rescore_alpha, opts.rescore_beta, opts.nbest)
    from ds2.decode.graph import GraphDecoder

    lang = Path(opts.lang_dir)
    if opts.method == "ctc-graph":
        return GraphDecoder(lang / "H.fst", tokenizer, beam=opts.graph_beam, max_active=opts.max_active)
    return GraphDecoder(lang / "HLG.fst", tokenizer, lang / "words.txt", beam=opts.graph_beam,
                        max_active=opts.max_active, lm_scale=opts.lm_scale)


_worker_decoder = None
_worker_error: str | None = None


def _init_worker(opts: DecodeOptions, tokenizer_dict: dict):
    # An initializer that raises makes multiprocessing.Pool restart the worker forever, so the
    # error is kept and raised by the first task instead.
    global _worker_decoder, _worker_error
    torch.set_num_threads(1)
    try:
        _worker_decoder = build_decoder(opts, tokenizer_from_dict(tokenizer_dict))
    except DecoderError as e:
        _worker_error = str(e)


def _decode_chunk(args: tuple[dict, list[np.ndarray], int]) -> tuple[list, float]:
    if _worker_error is not None:
        raise DecoderError(_worker_error)
    params, chunk, nbest = args
    return _decode_with(_worker_decoder, params, chunk, nbest)


def _decode_with(decoder, params: dict, chunk: list[np.ndarray], nbest: int = 0) -> tuple[list, float]:
    """Texts (or, with nbest > 0, the first pass's n-best lists) of `chunk`, and the seconds taken."""
    if params:
        decoder.set_params(**params)
    start = time.perf_counter()
    if nbest:
        out = [decoder.search.nbest(lp, nbest) for lp in chunk]
    else:
        out = [decoder.decode(lp) for lp in chunk]
    return out, time.perf_counter() - start


class DecoderPool:
    """One method's decoder in `num_jobs` processes (or in this one), kept for many calls.

    `decode(log_probs, **params)` changes the weights (alpha, beta, lm_scale) first, so a
    tuning grid reuses the loaded LMs and graphs.
    """

    def __init__(self, opts: DecodeOptions, tokenizer: Tokenizer, num_jobs: int = 1):
        self.num_jobs = num_jobs
        self.pool = None
        if num_jobs > 1:
            ctx = mp.get_context("spawn")
            self.pool = ctx.Pool(num_jobs, initializer=_init_worker, initargs=(opts, tokenizer.to_dict()))
        else:
            self.decoder = build_decoder(opts, tokenizer)

    def decode(self, log_probs: list[np.ndarray], **params) -> tuple[list[str], float]:
        """Texts of every utterance, and the CPU seconds spent searching (summed over processes)."""
        return self._run(log_probs, params, 0)

    def nbest(self, log_probs: list[np.ndarray], n: int) -> list[list[tuple[str, float, int]]]:
        """nbest-rescore's first-pass n-best lists of every utterance."""
        return self._run(log_probs, {}, n)[0]

    def _run(self, log_probs, params: dict, nbest: int):
        if self.pool is None:
            return _decode_with(self.decoder, params, log_probs, nbest)
        # Small chunks spread long and short utterances over the processes.
        size = max(1, len(log_probs) // (self.num_jobs * 4))
        chunks = [(params, log_probs[i:i + size], nbest) for i in range(0, len(log_probs), size)]
        results = self.pool.map(_decode_chunk, chunks)
        return [t for out, _ in results for t in out], sum(seconds for _, seconds in results)

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_many(opts: DecodeOptions, tokenizer: Tokenizer, log_probs: list[np.ndarray],
                num_jobs: int = 1) -> tuple[list[str], float]:
    """Texts of every utterance, and the CPU seconds spent searching (summed over processes)."""
    with DecoderPool(opts, tokenizer, min(num_jobs, max(1, len(log_probs) // 8))) as pool:
        return pool.decode(log_probs)
