"""The screenshot of `ds2 serve`'s page (docs/serve_page.png): a trained model, espeak-ng
speaking a sentence into headless chromium's fake microphone, then the same sentence uploaded.
Uses the browser test's set-up (tests/test_serve_browser.py: Debian's chromium, selenium).

    python bench/serve_screenshot.py egs/synth/exp/streaming docs/serve_page.png [ds2 serve options]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serve_browser import chrome, wait_for  # noqa: E402

from ds2.serve.testing import running_server  # noqa: E402

TEXT = "speech recognition turns sound into written words"


def main(model: str, out: str, *options: str) -> None:
    from selenium.webdriver.common.by import By

    os.environ.setdefault("SE_OFFLINE", "true")
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp / "speech.wav"), TEXT], check=True)
    x, rate = sf.read(str(tmp / "speech.wav"), dtype="float32")
    pad = np.zeros(int(0.3 * 48000), np.float32)
    mic = np.concatenate([pad, resample_poly(x, 48000, rate).astype(np.float32), pad])
    sf.write(str(tmp / "mic.wav"), mic, 48000, subtype="PCM_16")
    driver = chrome(tmp / "mic.wav")
    try:
        with running_server(model, *options) as (url, _):
            driver.get(url + "/")
            wait_for(driver, "document.getElementById('model').textContent.startsWith('Model:')", 10, "/health")
            driver.find_element(By.ID, "start").click()
            time.sleep(len(mic) / 48000 + 1.0)
            driver.find_element(By.ID, "stop").click()
            wait_for(driver, "window.ds2Final", 30, "the final text")
            driver.find_element(By.ID, "file").send_keys(str(tmp / "speech.wav"))
            driver.find_element(By.ID, "upload").click()
            wait_for(driver, "document.getElementById('upload-result').dataset.state == 'done'", 30, "the upload")
            driver.set_window_size(1100, 690)
            driver.save_screenshot(out)
            print("partials:", driver.execute_script("return window.ds2Partials"))
            print("final:", driver.execute_script("return window.ds2Final.text"))
    finally:
        driver.quit()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
