"""Progress bars in a log file: whole lines, at most one every LOG_INTERVAL seconds."""

import subprocess
import sys

SCRIPT = """
import time
from ds2 import progress
progress.LOG_INTERVAL = 0.5
bar = progress.progress(range(40), desc="work")
for i in bar:
    bar.set_postfix(loss=f"{1 / (i + 1):.3f}")  # as the training loop does every step
    time.sleep(0.05)
"""


def test_a_bar_in_a_log_writes_a_line_every_interval_not_every_step():
    # stderr is a pipe here, as when a recipe's output goes to a log file
    err = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stderr
    lines = err.splitlines()
    assert "\r" not in err
    assert 2 <= len(lines) <= 8, lines  # 40 steps of 50 ms: about one line per 0.5 s, not 40
    assert lines[-1].startswith("work: 100%") and "40/40" in lines[-1] and "loss=" in lines[-1]
    assert len(set(lines)) == len(lines)  # closing the bar does not repeat its last line
