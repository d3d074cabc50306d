"""Transcribing audio with a trained model outside a recipe: `ds2 transcribe` and `ds2.Transcriber`.

    from ds2 import Transcriber
    t = Transcriber.load("egs/synth/exp/ds2", method="beam")   # LM and tuned weights from the folder
    print(t.transcribe("speech.flac").text)
    for uid, result in t.transcribe_many([("a", "a.wav"), ("b", "b.ogg")]): ...

A result has the text, and words with start and end times and a confidence, from a CTC
alignment of the text's tokens to the model's frames (one definition for every method).
NumPy only besides the backend, so the onnxruntime backend runs without torch.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from ds2.infer import ModelError
from ds2.infer.align import ctc_align
from ds2.infer.audio import AudioError, AudioReader
from ds2.infer.backend import AcousticModel
from ds2.infer.long_audio import Counted, joined, segments, streamed, windowed
from ds2.infer.transcript import Transcript, Word, transcript

log = logging.getLogger(__name__)
WINDOW_SECONDS = 30.0  # audio longer than this is transcribed a piece at a time (transcribe_long)


def _fragments(tokenizer) -> list[str]:
    from ds2.decode.beam import token_fragments

    return token_fragments(tokenizer)


class Transcriber:
    """A model (an `AcousticModel` backend, ds2.infer.backend) and a decoding method (ds2.decode.methods)."""

    def __init__(self, model: AcousticModel, options=None, window_seconds: float = WINDOW_SECONDS):
        from ds2.decode.methods import DecodeOptions, build_decoder
        from ds2.lm.ngram import lm_unit

        self.model = model
        self.options = options or DecodeOptions()
        self.method = self.options.method
        self.decoder = build_decoder(self.options, model.tokenizer)
        self.fragments = _fragments(model.tokenizer)
        self.char_words = lm_unit(model.tokenizer) == "char"  # Mandarin: every character is a word
        self.frame_seconds = model.front_end.frame_shift * model.geometry.stride
        self.window_seconds = window_seconds

    @classmethod
    def load(cls, model_path: str | Path, method: str = "greedy", backend: str = "torch", threads: int = 0,
             **given) -> "Transcriber":
        """`model_path`: an experiment folder or checkpoint (torch), or a folder of `ds2 export`
        (onnxruntime). The method's LM weights are the tuned ones of the experiment (its tuned/),
        its LM and graphs those its decodings used (their result.json), unless `given`."""
        model = load_model(model_path, backend, threads)
        return cls(model, decoding_options(method, experiment_of(model_path), given))

    # -- one utterance -----------------------------------------------------------------------
    def check_length(self, num_samples: int, name: str) -> None:
        """AudioError for audio too short for one feature frame (whole or streamed alike)."""
        least, ms = self.model.front_end.min_samples(), 1000 / self.model.front_end.sampling_rate
        if num_samples < least:
            raise AudioError(f"{name}: too short ({num_samples * ms:.0f} ms of audio; {least * ms:.0f} ms at least)")

    def features(self, samples: np.ndarray, name: str) -> np.ndarray:
        self.check_length(len(samples), name)
        return self.model.front_end(samples)

    def transcribe(self, audio, uid: str | None = None) -> Transcript:
        """The transcript of a path, file bytes, or float samples at the model's rate."""
        (uid_, result), = self.transcribe_many([(uid or (str(audio) if isinstance(audio, (str, Path)) else "audio"),
                                                 audio)])
        if isinstance(result, Exception):
            raise result
        return result

    def result(self, uid: str, log_probs: np.ndarray, duration: float) -> Transcript:
        """The method's text of `log_probs`, with word times and confidences."""
        text = " ".join(self.decoder.decode(log_probs).split())
        return transcript(uid, text, duration, self.words(log_probs, text, duration))

    def words(self, log_probs: np.ndarray, text: str, duration: float) -> list[Word]:
        tokenizer = self.model.tokenizer
        try:
            tokens = tokenizer.encode(text) if text else []
        except Exception:  # noqa: BLE001 - a text the tokenizer cannot spell: no times rather than none at all
            tokens = None
        spans = ctc_align(log_probs, tokens, tokenizer.blank_id) if tokens is not None else None
        if spans is None:
            log.warning("no word times: the text %r cannot be aligned to the frames", text[:60])
            return []
        words, current = [], None
        for tok, (a, b) in zip(tokens, spans):
            frag = self.fragments[tok]
            piece, score = frag.strip(), float(np.mean(log_probs[a:b, tok]))
            if current is not None and (frag.startswith(" ") or self.char_words or not piece):
                words.append(current)  # a space (or a word-initial piece) ends the word before it
                current = None
            if not piece:
                continue
            if current is None:
                current = [piece, a, b, [score]]
            else:
                current[0] += piece
                current[2] = b
                current[3].append(score)
        if current is not None:
            words.append(current)
        return [Word(w, min(a * self.frame_seconds, duration), min(b * self.frame_seconds, duration),
                     math.exp(float(np.mean(s)))) for w, a, b, s in words]

    # -- many --------------------------------------------------------------------------------
    def transcribe_many(self, sources, batch_seconds: float = 60.0, chunk_seconds: float = 0.0, partial=None):
        """(id, Transcript) for each (id, source) in order, or (id, AudioError) for one that cannot be
        transcribed (the others go on; a source may be an AudioError already). Sources are read a
        few at a time and run through the acoustic model in batches of up to `batch_seconds` of
        audio, the longest first; one longer than `window_seconds` on its own, a piece at a time
        (`transcribe_long`). With `chunk_seconds` (a forward-only model), each is streamed in
        chunks of that length, and `partial(id, text)` called after each chunk."""
        rate = self.model.front_end.sampling_rate
        group, samples_in_group = [], 0
        for uid, source in sources:
            named = isinstance(source, (str, Path)) and str(source) != uid  # a list's `id path`: name both
            long = None
            try:
                if isinstance(source, AudioError):  # an input known to be bad (a --list line naming no file)
                    raise source
                audio = AudioReader(source, rate, f"{uid} ({source})" if named else uid)
                if chunk_seconds or audio.duration > self.window_seconds:
                    long = self.transcribe_long(uid, audio, chunk_seconds or 2.0,
                                                partial and (lambda text, uid=uid: partial(uid, text)))
                else:
                    samples = audio.read()
                    group.append((uid, samples, self.features(samples, audio.name)))
                    samples_in_group += len(samples)
            except AudioError as e:
                group.append((uid, None, e))
            if long is not None or samples_in_group >= batch_seconds * rate or len(group) >= 64:
                yield from self._run(group, batch_seconds)
                group, samples_in_group = [], 0
            if long is not None:
                yield uid, long
        if group:
            yield from self._run(group, batch_seconds)

    def transcribe_long(self, uid: str, audio: AudioReader, block_seconds: float = 2.0,
                        partial=None) -> Transcript:
        """The transcript of `audio` (an AudioReader at the model's rate), read, run and decoded a
        piece at a time (ds2.infer.long_audio), in memory that depends on `window_seconds`, not on its
        length. A forward-only model streams it, `block_seconds` at a time, calling `partial(text)`
        after each block; another runs on overlapping windows. Audio of at most `window_seconds`
        is read whole first, and gives what `transcribe` gives."""
        rate, blank = self.model.front_end.sampling_rate, self.model.tokenizer.blank_id
        counted = Counted(audio.blocks(max(1, round(block_seconds * rate)), whole_up_to=self.window_seconds),
                          lambda n: self.check_length(n, audio.name))
        if self.model.streaming:
            pieces = streamed(self.model, counted, partial)
        else:
            pieces = windowed(self.model, counted, round(self.window_seconds / self.model.front_end.frame_shift))
        size = max(1, round(self.window_seconds / self.frame_seconds))
        parts = [(first * self.frame_seconds, self.result(uid, lp, math.inf))
                 for first, lp in segments(pieces, size, blank)]
        return joined(uid, parts, counted.samples / rate, "" if self.char_words else " ")

    def _run(self, group, batch_seconds: float):
        """(id, Transcript or AudioError) of each (id, samples, features or error) of `group`, in order."""
        rate = self.model.front_end.sampling_rate
        ready = sorted((i for i, g in enumerate(group) if g[1] is not None), key=lambda i: -len(group[i][1]))
        batches, seconds = [], batch_seconds  # the longest first, up to batch_seconds each
        for i in ready:
            duration = len(group[i][1]) / rate
            if seconds + duration > batch_seconds:
                batches.append([])
                seconds = 0.0
            batches[-1].append(i)
            seconds += duration
        results = {}
        for batch in batches:
            for j, lp in zip(batch, self.model.log_probs([group[j][2] for j in batch])):
                results[j] = self.result(group[j][0], lp, len(group[j][1]) / rate)
        for i, (uid, samples, feats) in enumerate(group):
            yield uid, results[i] if samples is not None else feats

    def stream(self):
        """A StreamingRecognizer of this model (a forward-only one), whose `finish` gives log-probs
        for `result`."""
        from ds2.infer.stream import StreamingRecognizer

        if not self.model.streaming:
            raise ValueError(f"this model cannot stream: {self.model.streaming_problem}")
        return StreamingRecognizer(self.model)


def load_model(model_path: str | Path, backend: str = "torch", threads: int = 0) -> AcousticModel:
    """The acoustic model backend of `model_path` (the `AcousticModel` protocol's implementation named `backend`)."""
    if backend == "torch":
        from ds2.infer.acoustic import TorchAcousticModel
        from ds2.infer.onnx_model import MANIFEST

        if (Path(model_path) / MANIFEST).is_file():
            raise ModelError(f"{model_path} is an export folder of `ds2 export`, not an experiment folder or "
                             f"checkpoint: add --backend onnxruntime")

        return TorchAcousticModel(model_path, threads)
    if backend == "onnxruntime":
        from ds2.infer.onnx_model import OnnxAcousticModel

        return OnnxAcousticModel(model_path, threads or 1)
    raise ValueError(f"unknown backend {backend!r}: torch or onnxruntime")


def experiment_of(model_path: str | Path) -> Path | None:
    """The experiment folder a model path belongs to: the folder itself, the folder of its
    checkpoints/, or of an export folder inside it; None when there is none."""
    p = Path(model_path).resolve()
    for candidate in (p, p.parent, p.parent.parent):
        if candidate.is_dir() and ((candidate / "config.yaml").is_file() or (candidate / "tuned").is_dir()):
            return candidate
    return None


def decoding_options(method: str, exp_dir: Path | None, given: dict):
    """DecodeOptions of `method`: defaults, then the experiment's tuned weights, then the LM and
    graph folders its own decodings with `method` used (their result.json; relative paths are
    the recipe's, EXP/../..), then `given` (None values are ignored). ValueError when a needed
    file is neither given nor found."""
    from ds2.decode.methods import DecodeOptions, method as method_of

    m = method_of(method)
    values = {}
    if exp_dir is not None:
        from ds2.decode.tune import tuned_weights

        if m.grid or m.first_pass:
            values.update(tuned_weights(exp_dir, method)[0])
        values.update(_resources_used(exp_dir, method, m.needs))
    values.update({k: v for k, v in given.items() if v is not None})
    missing = [n for n in m.needs if not values.get(n)]
    if missing:
        flags = ", ".join("--" + n.replace("_", "-") for n in missing)
        where = f"{exp_dir} has no decoding with {method} to take it from" if exp_dir else "no experiment folder"
        raise ValueError(f"--method {method} needs {flags} ({where})")
    return DecodeOptions(method=method, **{k: v for k, v in values.items() if k != "method"})


def _resources_used(exp_dir: Path, method: str, needs) -> dict:
    found = {}
    for result in sorted(exp_dir.glob(f"decode_*_{method}/result.json")):
        try:
            record = json.loads(result.read_text())
        except (OSError, ValueError):
            continue
        if record.get("method") != method:
            continue
        for name in needs:
            value = record.get("settings", {}).get(name)
            if not value or name in found:
                continue
            for base in (Path.cwd(), exp_dir.parent.parent):
                path = (base / value) if not Path(value).is_absolute() else Path(value)
                if path.exists():
                    found[name] = str(path)
                    break
    return found
