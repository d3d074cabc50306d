"""What transcription gives: a text, with the times and confidences of its words."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float  # geometric mean of the posteriors of its tokens over their aligned frames


@dataclass
class Transcript:
    id: str
    text: str
    duration: float  # seconds of audio
    words: list[Word] = field(default_factory=list)
    confidence: float = 0.0  # the mean of the words' confidences (1.0 for no words)

    def to_dict(self) -> dict:
        """The transcript as data, times to the millisecond and confidences to 4 places."""
        d = asdict(self)
        for w in d["words"]:
            w["start"], w["end"], w["confidence"] = round(w["start"], 3), round(w["end"], 3), round(w["confidence"], 4)
        d["duration"], d["confidence"] = round(d["duration"], 3), round(d["confidence"], 4)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def transcript(uid: str, text: str, duration: float, words: list[Word]) -> Transcript:
    conf = float(np.mean([w.confidence for w in words])) if words else 1.0
    return Transcript(uid, text, duration, words, conf)
