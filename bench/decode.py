"""Decoders on the same CTC log-probs and KenLM model: ours against pyctcdecode and flashlight-text.

    python bench/decode.py --exp-dir egs/synth/exp/ds2 --lm-dir egs/synth/data/lm \\
        [--lang-dir egs/synth/data/lang_char] [--beams 16 64]

Reads the log-probs `ds2 decode` kept in EXP_DIR/logprobs/{dev,test}.pt (run the recipe
first). Every LM decoder gets its LM weight and word bonus tuned on dev by the same small
grid at each beam, then decodes test at that beam, all in one process. Prints %WER and the real-time
factor per core (search seconds / audio seconds; the acoustic model is not included), with
ratios to pyctcdecode at the same beam. HLG (kaldi-decoder) is measured alongside.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import numpy as np

from ds2.decode.beam import PrefixBeamSearch
from ds2.decode.methods import method
from ds2.decode.runner import LogProbs
from ds2.lm.ngram import arpa_vocabulary, load_lm
from ds2.score import score

# (LM weight, word bonus) grids: `ds2 tune`'s for the beam method (from the registry) for ours and
# pyctcdecode, which share the formula; flashlight's KenLM wrapper scores in its own units.
GRID = dict(method("beam").grid)
FLASHLIGHT_GRID = {"alpha": [1.0, 2.0, 3.0, 4.0], "beta": [-2.0, 0.0, 2.0]}


class Ours:
    name = "ds2 prefix beam"
    grid = GRID

    def __init__(self, tokenizer, lm_bin, arpa):
        self.search = PrefixBeamSearch(tokenizer, load_lm(lm_bin))

    def configure(self, beam, alpha, beta):
        self.search.set_params(alpha=alpha, beta=beta, beam=beam)

    def decode(self, lp):
        return self.search.decode(lp)


class PyCtcDecode:
    name = "pyctcdecode"
    grid = GRID

    def __init__(self, tokenizer, lm_bin, arpa):
        import pyctcdecode

        self.labels = ["" if i == tokenizer.blank_id else s for i, s in enumerate(tokenizer.symbols)]
        self.lm_bin, self.words = str(lm_bin), arpa_vocabulary(arpa)
        self.make = pyctcdecode.build_ctcdecoder
        self.beam = 16

    def configure(self, beam, alpha, beta):
        self.decoder = self.make(self.labels, kenlm_model_path=self.lm_bin, unigrams=self.words,
                                 alpha=alpha, beta=beta)
        self.beam = beam

    def decode(self, lp):
        return self.decoder.decode(lp, beam_width=self.beam)


class Flashlight:
    """flashlight-text's LexiconDecoder: words of the LM only, spelled by the tokens, KenLM word LM."""

    name = "flashlight-text"
    grid = FLASHLIGHT_GRID

    def __init__(self, tokenizer, lm_bin, arpa):
        from flashlight.lib.text.decoder import KenLM, SmearingMode, Trie
        from flashlight.lib.text.dictionary import Dictionary

        self.tokenizer = tokenizer
        self.space = tokenizer.symbols.index(" ")
        lexicon = {w: [list(w)] for w in arpa_vocabulary(arpa) if tokenizer.can_encode(w)}
        self.word_dict = Dictionary()
        for word in [*lexicon, "<unk>"]:
            self.word_dict.add_entry(word)
        tokens = Dictionary()
        for sym in tokenizer.symbols:
            tokens.add_entry(sym)
        self.lm = KenLM(str(lm_bin), self.word_dict)
        self.trie = Trie(tokenizer.vocab_size, self.space)
        start = self.lm.start(False)
        for word, spellings in lexicon.items():
            idx = self.word_dict.get_index(word)
            _, s = self.lm.score(start, idx)
            for spelling in spellings:
                self.trie.insert(tokenizer.encode("".join(spelling)), idx, s)
        self.trie.smear(SmearingMode.MAX)

    def configure(self, beam, alpha, beta):
        from flashlight.lib.text.decoder import CriterionType, LexiconDecoder, LexiconDecoderOptions

        opts = LexiconDecoderOptions(beam_size=beam, beam_size_token=self.tokenizer.vocab_size, beam_threshold=25.0,
                                     lm_weight=alpha, word_score=beta, unk_score=-math.inf, sil_score=0.0,
                                     log_add=False, criterion_type=CriterionType.CTC)
        self.decoder = LexiconDecoder(opts, self.trie, self.lm, self.space, self.tokenizer.blank_id,
                                      self.word_dict.get_index("<unk>"), [], False)

    def decode(self, lp):
        lp = np.ascontiguousarray(lp, dtype=np.float32)
        best = self.decoder.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])[0]
        return " ".join(self.word_dict.get_entry(w) for w in best.words if w >= 0)


def run(decoder, lp: LogProbs) -> tuple[dict, float]:
    start = time.perf_counter()
    hyps = {uid: decoder.decode(x) for uid, x in zip(lp.ids, lp.log_probs)}
    return hyps, (time.perf_counter() - start) / lp.audio_seconds


def tune(decoder, dev: LogProbs, beam: int) -> tuple[float, float]:
    best = None
    for alpha, beta in itertools.product(decoder.grid["alpha"], decoder.grid["beta"]):
        decoder.configure(beam, alpha, beta)
        wer, _ = score(dev.refs, run(decoder, dev)[0])
        if best is None or wer.rate < best[0]:
            best = (wer.rate, alpha, beta)
    return best[1], best[2]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, default=Path("egs/synth/exp/ds2"))
    p.add_argument("--lm-dir", type=Path, default=Path("egs/synth/data/lm"))
    p.add_argument("--lang-dir", type=Path, default=Path("egs/synth/data/lang_char"))
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--beams", type=int, nargs="+", default=[16, 64])
    args = p.parse_args()
    dev = LogProbs.load(args.exp_dir / "logprobs" / "dev.pt")
    test = LogProbs.load(args.exp_dir / "logprobs" / "test.pt")
    arpa, lm_bin = args.lm_dir / f"lm_{args.order}gram.arpa", args.lm_dir / f"lm_{args.order}gram.bin"
    print(f"test: {len(test.ids)} utterances, {test.audio_seconds:.0f} s of audio; LM {lm_bin}; "
          f"LM weight and word bonus of each decoder tuned on dev ({len(dev.ids)} utterances) at each beam")

    rows = {}
    for cls in (PyCtcDecode, Ours, Flashlight):
        decoder = cls(test.tokenizer, lm_bin, arpa)
        for beam in args.beams:
            alpha, beta = tune(decoder, dev, beam)
            decoder.configure(beam, alpha, beta)
            hyps, rtf = run(decoder, test)
            wer, _ = score(test.refs, hyps)
            rows[(cls.name, beam)] = (wer.rate, rtf, alpha, beta)

    if (args.lang_dir / "HLG.fst").is_file():
        from ds2.decode.graph import GraphDecoder

        for scale in (0.5, 0.8, 1.0, 1.3, 1.6):  # its weight, tuned on dev as well
            dec = GraphDecoder(args.lang_dir / "HLG.fst", test.tokenizer, args.lang_dir / "words.txt", lm_scale=scale)
            wer, _ = score(dev.refs, run(dec, dev)[0])
            if ("hlg", 0) not in rows or wer.rate < rows[("hlg", 0)][0]:
                rows[("hlg", 0)] = (wer.rate, scale)
        scale = rows.pop(("hlg", 0))[1]
        dec = GraphDecoder(args.lang_dir / "HLG.fst", test.tokenizer, args.lang_dir / "words.txt", lm_scale=scale)
        hyps, rtf = run(dec, test)
        rows[("HLG (kaldi-decoder)", 16)] = (score(test.refs, hyps)[0].rate, rtf, scale, 0.0)

    print(f"\n{'decoder':22s} {'beam':>5s} {'%WER':>7s} {'RTF/core':>9s} {'x faster than pyctcdecode':>26s}  weights")
    for (name, beam), (wer, rtf, alpha, beta) in rows.items():
        ref = rows.get(("pyctcdecode", beam))
        ratio = f"{ref[1] / rtf:.1f}x" if ref else "-"
        print(f"{name:22s} {beam:5d} {wer:7.2f} {rtf:9.5f} {ratio:>26s}  alpha={alpha} beta={beta}")


if __name__ == "__main__":
    main()
