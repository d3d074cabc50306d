"""Long audio in memory that does not grow with its length (`Transcriber.transcribe_long`).

The file is read a block at a time (ds2.infer.audio.AudioReader.blocks). A forward-only model
streams it (ds2.infer.stream: the log-probs of one pass over the whole file); any other model
runs on windows that overlap by a quarter, each window's log-probs taking over from the previous
one's in the middle half of their overlap, at the middle of the longest run of frames that both
call blank (a pause). The log-probs are then decoded in segments of at most a window, each cut
likewise at a pause among its last quarter, and the segments' texts and word times joined.
NumPy only, like the backends' interface.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from ds2.infer.transcript import Transcript, Word, transcript


def pause(blank: np.ndarray) -> int:
    """The index of the middle of the longest run of True in `blank` (its middle when it has none)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(blank, np.int8), [0]])))
    if not len(edges):
        return len(blank) // 2
    starts, ends = edges[::2], edges[1::2]
    i = int(np.argmax(ends - starts))
    return int(starts[i] + ends[i]) // 2


class Counted:
    """The blocks of samples of `blocks`, counted in `samples`; once they are all out, `check(samples)`
    (which raises for too few)."""

    def __init__(self, blocks: Iterable[np.ndarray], check: Callable[[int], None]):
        self.blocks, self.check, self.samples = blocks, check, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            self.samples += len(block)
            yield block
        self.check(self.samples)


def streamed(model, blocks: Iterable[np.ndarray], partial: Callable[[str], None] | None = None):
    """The log-probs of a forward-only `model` on the samples of `blocks`, as they are computed
    (together those of one pass over all of them); `partial(text)` after each block."""
    from ds2.infer.stream import StreamingRecognizer, run_steps

    rec = StreamingRecognizer(model)
    for block in blocks:
        rec.push(block)
        step = rec.next_step()
        if step is not None:
            run_steps(model, [(rec, step)])
        if partial is not None:
            partial(rec.partial)
        yield rec.take()
    run_steps(model, [(rec, rec.final_step())])
    yield rec.take()


def windowed(model, blocks: Iterable[np.ndarray], window: int) -> Iterator[np.ndarray]:
    """The log-probs of `model` on the samples of `blocks`, run on windows of about `window` feature
    frames that overlap by a quarter, stitched at pauses in the overlaps."""
    return _stitched(_windows(model, _features(model.front_end, blocks), window), model.tokenizer.blank_id)


def _features(front_end, blocks):
    stream = front_end.stream()
    for block in blocks:
        yield stream.accept(block)
    yield stream.finish()


def _windows(model, features, window: int):
    """(first output frame, log-probs) of `model` on windows of `features`, each starting three
    quarters of a window after the one before (window and quarter in whole strides)."""
    stride = model.geometry.stride
    window = max(4 * stride, window - window % (4 * stride))
    hop = window - window // 4
    held, first, covered = np.zeros((0, model.front_end.num_features), np.float32), 0, 0
    for feats in features:
        held = np.concatenate([held, feats])
        while len(held) >= window:
            yield first // stride, model.log_probs([held[:window]])[0]
            covered, held, first = first + window, held[hop:], first + hop
    if first + len(held) > covered:  # the end, unless the last window reached it
        yield first // stride, model.log_probs([held])[0]


def _stitched(windows, blank: int) -> Iterator[np.ndarray]:
    previous = None  # (first frame, log-probs) of the last window, from where it took over
    for first, lp in windows:
        if previous is not None:
            p_first, p_lp = previous
            end = p_first + len(p_lp)
            quarter = (end - first) // 4
            a, b = first + quarter, end - quarter
            both = (p_lp[a - p_first:b - p_first].argmax(1) == blank) & (lp[a - first:b - first].argmax(1) == blank)
            cut = a + pause(both)
            yield p_lp[:cut - p_first]
            first, lp = cut, lp[cut - first:]
        previous = first, lp
    if previous is not None:
        yield previous[1]


def segments(pieces: Iterable[np.ndarray], size: int, blank: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first frame, log-probs) of consecutive segments of at most `size` frames of the log-probs
    that `pieces` hold one after the other, each cut in the middle of the longest run of frames
    whose best token is `blank` among its last quarter."""
    first, held, count = 0, [], 0
    for lp in pieces:
        if not len(lp):
            continue
        held.append(lp)
        count += len(lp)
        if count <= size:
            continue
        frames = np.concatenate(held)
        while len(frames) > size:
            low = size - size // 4
            cut = low + pause(frames[low:size].argmax(1) == blank)
            yield first, frames[:cut]
            first, frames = first + cut, frames[cut:]
        held, count = [frames], len(frames)
    if count:
        yield first, np.concatenate(held)


def joined(uid: str, parts: list[tuple[float, Transcript]], duration: float, sep: str) -> Transcript:
    """One transcript of `duration` seconds of the transcripts of its segments, each with the time
    it starts at: their texts joined by `sep`, their words moved to that time."""
    words = [Word(w.word, min(w.start + at, duration), min(w.end + at, duration), w.confidence)
             for at, part in parts for w in part.words]
    return transcript(uid, sep.join(part.text for _, part in parts if part.text), duration, words)

