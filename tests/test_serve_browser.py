"""The page of `ds2 serve` in a real browser: Debian's chromium, driven by selenium, listens to a
fake microphone that plays espeak-ng's sentence, streams it to the server and shows the growing
partial text and the final one; then transcribes an uploaded file.

Needs the system packages chromium and chromium-driver (tools/install_system_deps.sh): without
them the test fails, it does not skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from memorised import TEXT, cer

from ds2.serve.testing import running_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chrome(fake_audio: Path):
    """Headless chromium with a fake microphone that plays fake_audio once."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: the page's test needs a real browser; install the "
                    "packages chromium and chromium-driver (sudo bash tools/install_system_deps.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium missing: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_audio}%noloop",
                "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver: Selenium Manager never runs (nothing is downloaded)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def console(driver) -> str:
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))
    except Exception as e:  # noqa: BLE001 - only for a failure's message
        return f"(no browser log: {e})"


def wait_for(driver, script: str, timeout: float, what: str):
    """Polls `return <script>` until it is truthy; fails with the page's status and console."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            status = driver.execute_script("return document.getElementById('status').textContent")
            pytest.fail(f"{what}: not within {timeout} s (status line: {status!r})\n{console(driver)}")
        time.sleep(0.1)


@pytest.mark.slow
def test_page_streams_the_microphone_and_transcribes_an_upload(memorised, tmp_path, monkeypatch):
    exp, audio = memorised
    monkeypatch.setenv("SE_OFFLINE", "true")
    # Chrome's fake microphone reads 16-bit PCM WAV: espeak's sentence at 48 kHz, 0.3 s of silence around it
    x, rate = sf.read(str(audio / "espeak_22050.wav"), dtype="float32")
    pad = np.zeros(int(0.3 * 48000), np.float32)
    mic = np.concatenate([pad, resample_poly(x, 48000, rate).astype(np.float32), pad])
    wav = tmp_path / "mic_48k.wav"
    sf.write(str(wav), mic, 48000, subtype="PCM_16")
    seconds = len(mic) / 48000
    # the reference text of the same file, computed while the server starts
    reference = subprocess.Popen([sys.executable, "-m", "ds2", "transcribe", str(exp), str(wav), "--format", "json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shots = Path(os.environ.get("DS2_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    driver = chrome(wav)
    try:
        with running_server(exp) as (url, server):  # on SIGTERM it must exit with 0
            run_page(driver, url, server, audio, reference, seconds, shots)
    finally:
        driver.quit()
        if reference.poll() is None:
            reference.kill()
            reference.wait()


def run_page(driver, url: str, server, audio: Path, reference: subprocess.Popen, seconds: float, shots: Path):
    """Live from the fake microphone, then an upload; `server` is the `ds2 serve` process (its
    stderr lines in server.log)."""
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    assert driver.title == "ds2 — speech recognition"
    wait_for(driver, "document.getElementById('model').textContent.startsWith('Model:')", 10, "/health shown")

    # live: the fake microphone plays the file once, from getUserMedia on
    driver.find_element(By.ID, "start").click()
    time.sleep(seconds + 1.5)
    live = driver.execute_script("return window.ds2Partials.length")
    driver.find_element(By.ID, "stop").click()
    final = wait_for(driver, "window.ds2Final", 30, "the final message")
    partials = driver.execute_script("return window.ds2Partials")
    status = driver.find_element(By.ID, "status").text
    shown = driver.find_element(By.ID, "final").text
    words = driver.find_elements(By.CSS_SELECTOR, "#words .word")
    screenshot = shots / "serve_page.png"
    assert driver.save_screenshot(str(screenshot))

    out, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err
    expected = json.loads(out.splitlines()[0])["text"]

    log = "".join(server.log[-40:])
    context = f"partials {partials}, final {final}, status {status!r}\nserver:\n{log}\n{console(driver)}"
    assert status.startswith("done"), context
    assert shown == final["text"], context
    # the fake microphone starts a few ms into the file: the model does not depend on that (tests/memorised.py)
    assert cer(shown, expected) <= 0.1, f"page {shown!r} vs ds2 transcribe {expected!r}\n{context}"
    assert cer(shown, TEXT) <= 0.1, context
    assert len(words) == len(final["words"]) > 0, context
    # the partial text grew while the audio played
    nonempty = [p for p in partials if p.strip()]
    assert live >= 3 and len(set(nonempty)) >= 3, context
    lengths = [len(p) for p in nonempty]
    steps = list(zip(lengths, lengths[1:]))
    assert sum(b >= a for a, b in steps) > len(steps) / 2, context
    assert lengths[-1] > lengths[0], context
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 1000

    # upload: the 16 kHz file through /api/transcribe
    driver.find_element(By.ID, "file").send_keys(str(audio / "s16k.wav"))
    driver.find_element(By.ID, "upload").click()
    state = wait_for(driver, "['done', 'error'].includes(document.getElementById('upload-result').dataset.state)"
                             " && document.getElementById('upload-result').dataset.state", 30, "the upload's result")
    result = driver.find_element(By.ID, "upload-result").text
    assert driver.save_screenshot(str(screenshot))  # again, with both cards filled
    assert state == "done", f"{result}\nserver:\n{log}"
    assert cer(result, TEXT) <= 0.05, result
