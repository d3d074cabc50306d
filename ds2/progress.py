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


class _LogBar(tqdm):
    """A bar whose postfix and description wait for its next timed refresh: tqdm redraws at
    once on `set_postfix` (a training loop sets the loss every step), which in a log would be a
    line per step."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s="", refresh=True):
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)


def progress(iterable=None, **kwargs) -> tqdm:
    """`tqdm(iterable, **kwargs)` on stderr, as lines at most every LOG_INTERVAL seconds when
    stderr is not a terminal."""
    if "file" not in kwargs and not sys.stderr.isatty():
        kwargs["file"] = _Lines(sys.stderr)
        kwargs["mininterval"] = max(kwargs.get("mininterval", 0.1), LOG_INTERVAL)
        return _LogBar(iterable, **kwargs)
    return tqdm(iterable, **kwargs)
