"""Decoding CTC log-probs with an OpenFst graph (H or HLG) and kaldi-decoder's FasterDecoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ds2.lm.hlg import read_words
from ds2.text import Tokenizer


class GraphDecoder:
    """Best path through `fst_path` for (T, V) log-probs.

    With `words_txt` the graph's output labels are words (HLG); without, they are token
    ids + 1 (H alone: CTC decoding with a beam, no lexicon or LM). `lm_scale` weighs the
    graph's LM costs against the acoustic log-probs (the log-probs are divided by it).
    """

    def __init__(self, fst_path: str | Path, tokenizer: Tokenizer, words_txt: str | Path | None = None,
                 beam: float = 14.0, max_active: int = 3000, lm_scale: float = 1.0):
        import kaldi_decoder
        import kaldifst

        self.fst = kaldifst.StdVectorFst.read(str(fst_path))
        self.words = read_words(words_txt) if words_txt else None
        self.tokenizer = tokenizer
        self.acoustic_scale = 1.0 / lm_scale
        self.decoder = kaldi_decoder.FasterDecoder(
            self.fst, kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=max_active))

    def set_params(self, lm_scale: float | None = None):
        if lm_scale is not None:
            self.acoustic_scale = 1.0 / lm_scale

    def decode(self, log_probs: np.ndarray) -> str:
        import kaldi_decoder
        import kaldifst

        scaled = np.ascontiguousarray(log_probs * self.acoustic_scale, dtype=np.float32)
        self.decoder.decode(kaldi_decoder.DecodableCtc(scaled))
        if not self.decoder.reached_final():
            return ""
        ok, best_path = self.decoder.get_best_path()
        if not ok:
            return ""
        ok, _, olabels, _ = kaldifst.get_linear_symbol_sequence(best_path)
        if self.words is not None:  # words, or the characters of a character LM (no spaces)
            return (" " if self.tokenizer.word_boundaries else "").join(self.words[o] for o in olabels)
        return " ".join(self.tokenizer.decode([o - 1 for o in olabels]).split())
