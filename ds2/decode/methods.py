"""The decoding methods, declared in one registry, behind one narrow interface: (T, V) log-probs in, text out.

Each method is one `Method` entry of `REGISTRY` below: its name, a one-line description,
the resources it needs (`lm`, `rescore_lm`, `lang_dir`), the options shown in wer.txt and
RESULTS.md, the weights `ds2 tune` searches, the method whose tuned weights its first pass
takes, and how its decoder is built. `METHODS`, the validation of `DecodeOptions`,
`describe`, `ds2 tune`'s grid and the CLI's `--method` choices and options all read it, so a
new method is one entry here (plus its option fields in `DecodeOptions`, from which the CLI
makes its options) and its tests.

`decode_many` runs a method over many utterances in parallel processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ds2.lm.ngram import LOG10_TO_LN, lm_unit, lm_words
from ds2.text import Tokenizer, tokenizer_from_dict

RESOURCES = ("lm", "rescore_lm", "lang_dir")  # the DecodeOptions fields that name files a method reads


def _option(default, help: str):
    """A DecodeOptions field that `ds2 decode` and `ds2 tune` offer as --NAME (help: what it is)."""
    return field(default=default, metadata={"help": help})


@dataclass
class DecodeOptions:
    """Everything a method needs besides the log-probs; fields a method does not use are ignored.

    Every field but `method` is an option of `ds2 decode` and `ds2 tune` (`--rescore-lm` for
    `rescore_lm`), with the help text given here; the CLI adds which methods use it."""

    method: str = "greedy"
    lm: str | None = _option(None, "KenLM model (binary or ARPA) of the prefix beam search.")
    rescore_lm: str | None = _option(None, "The larger KenLM model the n best are rescored with.")
    lang_dir: str | None = _option(None, "Folder of H.fst, HLG.fst and words.txt (`ds2 lm graph`).")
    beam: int = _option(16, "Prefixes kept per frame by the prefix beam search.")
    alpha: float = _option(0.8, "LM weight of the prefix beam search.")
    beta: float = _option(1.0, "Word bonus of the prefix beam search.")
    nbest: int = _option(16, "Hypotheses of the first pass that are rescored.")
    rescore_alpha: float = _option(0.8, "LM weight of the rescoring pass (with --rescore-lm).")
    rescore_beta: float = _option(1.0, "Word bonus of the rescoring pass.")
    lm_scale: float = _option(0.8, "LM weight of the graph (the log-probs are divided by it).")
    # 16 gave the same WER on egs/synth at 1.5-2x the time
    graph_beam: float = _option(14.0, "kaldi-decoder beam, in cost units.")
    max_active: int = _option(3000, "kaldi-decoder's most active states per frame.")

    def __post_init__(self):
        m = method(self.method)
        for name in m.needs:
            flag = "--" + name.replace("_", "-")
            value = getattr(self, name)
            if not value:
                raise ValueError(f"--method {self.method} needs {flag}")
            if not Path(value).exists():
                raise ValueError(f"{flag} {value} does not exist (--method {self.method} needs it)")

    def replace(self, **changes) -> "DecodeOptions":
        return dataclasses.replace(self, **changes)


def option_fields() -> list[dataclasses.Field]:
    """The fields of DecodeOptions that are command-line options (all but `method`), in order."""
    return [f for f in dataclasses.fields(DecodeOptions) if f.name != "method"]


# -- the decoders ------------------------------------------------------------------------------
class Greedy:
    """Best path: `best_path_text`, the one greedy decoding of the package, on one utterance."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    def decode(self, log_probs: np.ndarray) -> str:
        from ds2.decode.greedy import best_path_text

        return best_path_text(log_probs, self.tokenizer)


def sentence_log_prob(lm, text: str, unit: str = "word") -> float:
    """ln p_LM(text) of a whole sentence (with <s> and </s>), as the rescoring pass weighs it; `unit`
    "char" for the character LM of text without word boundaries (`ds2.lm.ngram.lm_words`)."""
    return lm.score(" ".join(lm_words(text, unit)), bos=True, eos=True) * LOG10_TO_LN


def rescore_nbest(nbest: Sequence[tuple[str, float, int]], lm_log_probs: Sequence[float],
                  alpha: float, beta: float) -> str:
    """The n-best rescoring formula (of `NbestRescorer` and of `ds2 tune`'s grid alike): the
    text of `nbest` (text, log p_ctc, word count) maximising
    log p_ctc + alpha * ln p_LM(text) + beta * words (LM words: characters for a character LM), where lm_log_probs[i] is ln p_LM of
    nbest[i]'s text (`sentence_log_prob`). The first of equal scores wins; '' for no hypothesis."""
    if not nbest:
        return ""
    scores = [ctc + alpha * lm + beta * words for (_, ctc, words), lm in zip(nbest, lm_log_probs, strict=True)]
    return nbest[max(range(len(scores)), key=scores.__getitem__)][0]


class NbestRescorer:
    """First pass: prefix beam search (`search`); second: the `n` best rescored by `rescore_nbest`
    with the larger LM `big_lm` at weights alpha, beta."""

    def __init__(self, search, big_lm, alpha: float, beta: float, n: int):
        self.search, self.big_lm, self.alpha, self.beta, self.n = search, big_lm, alpha, beta, n

    def set_params(self, rescore_alpha: float | None = None, rescore_beta: float | None = None):
        """Weights of the rescoring pass (the first pass keeps its own)."""
        self.alpha = self.alpha if rescore_alpha is None else rescore_alpha
        self.beta = self.beta if rescore_beta is None else rescore_beta

    def decode(self, log_probs: np.ndarray) -> str:
        nbest = self.search.nbest(log_probs, self.n)
        return rescore_nbest(nbest, [sentence_log_prob(self.big_lm, text, self.search.unit) for text, _, _ in nbest],
                             self.alpha, self.beta)


def _prefix_beam_search(opts: DecodeOptions, tokenizer: Tokenizer):
    from ds2.decode.beam import BeamOptions, PrefixBeamSearch
    from ds2.lm.ngram import load_lm

    return PrefixBeamSearch(tokenizer, load_lm(opts.lm), BeamOptions(beam=opts.beam, alpha=opts.alpha, beta=opts.beta))


def _nbest_rescorer(opts: DecodeOptions, tokenizer: Tokenizer):
    from ds2.lm.ngram import load_lm

    return NbestRescorer(_prefix_beam_search(opts, tokenizer), load_lm(opts.rescore_lm), opts.rescore_alpha,
                         opts.rescore_beta, opts.nbest)


def _graph_decoder(graph: str, words: bool):
    def build(opts: DecodeOptions, tokenizer: Tokenizer):
        from ds2.decode.graph import GraphDecoder

        lang = Path(opts.lang_dir)
        return GraphDecoder(lang / graph, tokenizer, lang / "words.txt" if words else None, beam=opts.graph_beam,
                            max_active=opts.max_active, lm_scale=opts.lm_scale if words else 1.0)
    return build


def _rescoring_grid(log_probs: list[np.ndarray], opts: DecodeOptions, pool: "DecoderPool"):
    """texts_of(point) for nbest-rescore's grid: the first pass's n-best lists and their LM
    scores are computed once (in `pool`), and every point only applies `rescore_nbest`."""
    from ds2.lm.ngram import load_lm

    nbests = pool.nbest(log_probs, opts.nbest)
    big = load_lm(opts.rescore_lm)
    unit = lm_unit(pool.tokenizer)
    lm_scores = [[sentence_log_prob(big, text, unit) for text, _, _ in nb] for nb in nbests]

    def texts_of(point: dict) -> list[str]:
        return [rescore_nbest(nb, lm, point["rescore_alpha"], point["rescore_beta"])
                for nb, lm in zip(nbests, lm_scores)]
    return texts_of


# -- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """One decoding method, everything the toolkit needs to know about it."""

    name: str
    description: str  # one line, listed by `ds2 decode --help`
    build: Callable[[DecodeOptions, Tokenizer], object]  # its decoder: .decode(log_probs) -> text,
    # and .set_params(**weights) for every weight of `grid`
    needs: tuple[str, ...] = ()  # resources (of RESOURCES) it cannot run without
    settings: tuple[str, ...] = ()  # DecodeOptions fields that shape its output: wer.txt header, RESULTS.md
    grid: Mapping[str, Sequence[float]] | None = None  # the weights `ds2 tune` searches; None: nothing to tune
    first_pass: str | None = None  # the method whose tuned weights its first pass takes
    # texts_of(point) for its tuning grid when that is faster than decoding at every point:
    # (log_probs, opts, DecoderPool of this method) -> (grid point -> texts); None: decode again
    grid_texts: Callable | None = None


REGISTRY: dict[str, Method] = {m.name: m for m in [
    Method("greedy", "best path: the most likely token per frame, repeats merged, blanks removed",
           lambda opts, tokenizer: Greedy(tokenizer)),
    Method("beam", "DS2 prefix beam search, log p_ctc + alpha log p_LM + beta words, KenLM word LM "
           "(a character LM, beta per character, for tokens without spaces)",
           _prefix_beam_search, needs=("lm",), settings=("lm", "beam", "alpha", "beta"),
           grid={"alpha": (0.3, 0.45, 0.6, 0.8, 1.0), "beta": (0.0, 1.0, 2.0, 3.0, 4.0)}),
    Method("ctc-graph", "H (CTC topology) decoded by kaldi-decoder: a beam search without lexicon or LM",
           _graph_decoder("H.fst", words=False), needs=("lang_dir",),
           settings=("lang_dir", "graph_beam", "max_active")),
    Method("hlg", "HLG (CTC topology o lexicon o n-gram G) decoded by kaldi-decoder: words of the LM only "
           "(characters of a character LM, joined without spaces)",
           _graph_decoder("HLG.fst", words=True), needs=("lang_dir",),
           settings=("lang_dir", "graph_beam", "max_active", "lm_scale"),
           grid={"lm_scale": (0.6, 0.8, 1.0, 1.3, 1.6, 2.0)}),
    Method("nbest-rescore", "the beam search's n best rescored with a larger KenLM (e.g. a 4-gram)",
           _nbest_rescorer, needs=("lm", "rescore_lm"),
           settings=("lm", "rescore_lm", "beam", "nbest", "alpha", "beta", "rescore_alpha", "rescore_beta"),
           grid={"rescore_alpha": (0.4, 0.6, 0.8, 1.0, 1.3), "rescore_beta": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)},
           first_pass="beam", grid_texts=_rescoring_grid),
]}

METHODS = tuple(REGISTRY)


def method(name: str) -> Method:
    """The registry's entry for `name`; ValueError naming the choices when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown decoding method {name!r}; choose from {', '.join(METHODS)}") from None


def describe(opts: DecodeOptions) -> str:
    """The settings of `opts.method` as `key=value ...`, for the header of wer.txt."""
    return " ".join(f"{k}={v}" for k, v in settings(opts).items())


def settings(opts: DecodeOptions) -> dict:
    """The options that shape `opts.method`'s output (its registry `settings`), by name."""
    return {k: getattr(opts, k) for k in method(opts.method).settings}


class DecoderError(Exception):
    """A method's decoder cannot be built (an LM or graph that cannot be read)."""


def build_decoder(opts: DecodeOptions, tokenizer: Tokenizer):
    """An object with `.decode(log_probs) -> text` for `opts.method`; DecoderError (one line, naming
    the file) when its LM or graph cannot be loaded."""
    try:
        return method(opts.method).build(opts, tokenizer)
    except Exception as e:  # noqa: BLE001 - kenlm/kaldifst raise plain OSError/RuntimeError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DecoderError(f"cannot load the {opts.method} decoder: {first}") from None


# -- running a method over many utterances -------------------------------------------------------
_worker_decoder = None
_worker_error: str | None = None


def _init_worker(opts: DecodeOptions, tokenizer_dict: dict):
    # An initializer that raises makes multiprocessing.Pool restart the worker forever, so the
    # error is kept and raised by the first task instead.
    global _worker_decoder, _worker_error
    # The searches run without torch: a worker that has it loaded keeps it to one thread, and one
    # that has not is spared the import (seconds per worker, at every decoding and tuning run).
    torch = sys.modules.get("torch")
    if torch is not None:
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
        self.tokenizer = tokenizer
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
