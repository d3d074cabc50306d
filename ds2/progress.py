"""Progress bars that suit a terminal and a recipe's log file alike.

On a terminal `progress` is a plain tqdm bar. When stderr is not a terminal (a recipe's
output redirected to a log, a CI job), the bar is written as whole lines, one every
`LOG_INTERVAL` seconds at most, instead of thousands of carriage-return updates.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL = 10.0  # seconds between two progress lines in a log file


class _Lines:
    """A stream for tqdm that writes each refresh of a bar as its own line."""

    def __init__(self, stream):
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line and line != self.last:  # closing a bar repeats its final state
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable=None, **kwargs) -> tqdm:
    """`tqdm(iterable, **kwargs)` on stderr, as lines at most every LOG_INTERVAL seconds when
    stderr is not a terminal."""
    if "file" not in kwargs and not sys.stderr.isatty():
        kwargs["file"] = _Lines(sys.stderr)
        kwargs["mininterval"] = max(kwargs.get("mininterval", 0.1), LOG_INTERVAL)
    return tqdm(iterable, **kwargs)
