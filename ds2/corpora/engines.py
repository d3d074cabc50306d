"""Speech synthesisers of the synthetic corpora: each engine is a small class with a name, its
voices and `synthesise(text, voice, rate, pitch) -> 16 kHz float32 audio`.

`rate` and `pitch` are factors of the voice's normal speaking rate and pitch (1.0: as the voice
speaks by default); each engine maps them onto its own controls. `synthesise_many` speaks a list
of such requests; an engine that pays for starting up (festival loads its voice) speaks them in
one process.

- `Espeak`: espeak-ng (formant synthesis), voice `<accent>+<variant>`, e.g. `en-us+f3`; rate x 175
  words a minute (`-s`), pitch x 50 (`-p`, 0-99). English and Mandarin (`cmn-latn-pinyin+...`).
- `Festival`: Debian's festival with the English voices `kal_diphone`, `ked_diphone` (diphone
  concatenation, 16 kHz) and `cmu_us_slt_arctic_hts` (statistical parametric, 32 kHz, resampled).
  The rate stretches the diphone voices' predicted durations (festival's `Duration_Stretch` / rate) and is
  the HTS voice's hts_engine rate (`-r`); the pitch scales the diphone voices' F0 targets (mean
  and range); the HTS voice speaks at its own pitch.
- `Flite`: Debian's flite with its clustergen voices `rms` and `awb` (statistical parametric,
  16 kHz), compiled into the program. The rate scales flite's `duration_stretch`; they speak at
  their own pitch (the corpus's resampling gives them a range). Its `slt` is never offered: it is
  the speaker of festival's held-out HTS voice.

A new engine (another language's synthesiser) is one more class registered in `ENGINES`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLING_RATE = 16000


def to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 audio at 16 kHz."""
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != SAMPLING_RATE:
        g = np.gcd(sr, SAMPLING_RATE)
        audio = resample_poly(audio, SAMPLING_RATE // g, sr // g)
    return audio.astype(np.float32)


class EngineError(RuntimeError):
    """A synthesiser is missing or failed; the message says which and how to install it."""


class Engine:
    """A speech synthesiser. Subclasses set `name` (its program) and `install` and implement `synthesise`."""

    name = ""
    install = ""  # the command that installs it

    def check(self) -> None:
        """Raise EngineError with the install command when the engine cannot run here."""
        if shutil.which(self.name) is None:
            raise EngineError(f"{self.name} is not installed; install it with: {self.install}")

    def synthesise(self, text: str, voice: str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
        raise NotImplementedError

    def synthesise_many(self, requests: list[tuple[str, str, float, float]]) -> list[np.ndarray]:
        """Audio of each (text, voice, rate, pitch), in order."""
        return [self.synthesise(*r) for r in requests]


class Espeak(Engine):
    name = "espeak-ng"
    install = "apt-get install -y espeak-ng"

    def synthesise(self, text: str, voice: str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
        cmd = ["espeak-ng", "-v", voice, "-s", str(round(175 * rate)), "-p", str(round(50 * pitch)), "--stdout", text]
        wav = subprocess.run(cmd, capture_output=True, check=True).stdout
        audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
        return to_16k(audio, sr)


# festival's English voices (Debian festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts) and the
# F0 mean and range of the diphone voices' intonation targets (their festvox/*.scm): pitch scales them
FESTIVAL_VOICES = {
    "kal_diphone": (105, 14),
    "ked_diphone": (105, 15),
    "cmu_us_slt_arctic_hts": None,
}


class Festival(Engine):
    name = "festival"
    install = "apt-get install -y festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"

    def check(self) -> None:
        super().check()
        missing = [v for v in FESTIVAL_VOICES if not list(Path("/usr/share/festival/voices").glob(f"*/{v}"))]
        if missing:
            raise EngineError(f"festival has no voice {', '.join(missing)}; install them with: {self.install}")

    def synthesise(self, text: str, voice: str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
        return self.synthesise_many([(text, voice, rate, pitch)])[0]

    def synthesise_many(self, requests: list[tuple[str, str, float, float]]) -> list[np.ndarray]:
        # One festival process for all: loading a voice takes longer than speaking a sentence
        # (one process per sentence: 13x real time; per batch: 95-125x for the diphone voices).
        with tempfile.TemporaryDirectory(prefix="ds2-festival-") as tmp:
            # the rate scales festival's own Duration_Stretch (1.1 in Debian's festival), read once
            script, outs, current = ["(set! ds2_stretch (Parameter.get 'Duration_Stretch))"], [], None
            for i, (text, voice, rate, pitch) in enumerate(requests):
                if voice not in FESTIVAL_VOICES:
                    raise EngineError(f"festival: unknown voice {voice!r}: one of {', '.join(FESTIVAL_VOICES)}")
                if '"' in text or "\\" in text:
                    raise EngineError(f"festival: text with a quote or backslash: {text!r}")
                if voice != current:
                    script.append(f"(voice_{voice})")
                    current = voice
                f0 = FESTIVAL_VOICES[voice]
                if f0 is not None:  # a diphone voice
                    mean, std = f0
                    script.append(f"(set! int_lr_params '((target_f0_mean {mean * pitch:.2f}) (target_f0_std "
                                  f"{std * pitch:.2f}) (model_f0_mean 170) (model_f0_std 34)))")
                    script.append(f"(Parameter.set 'Duration_Stretch (/ ds2_stretch {rate:.4f}))")
                else:  # the HTS voice: hts_engine's speaking rate (-r)
                    script.append(f"(set! hts_engine_params (append {voice}::hts_engine_params "
                                  f"(list (list \"-r\" {rate:.4f}))))")
                out = Path(tmp) / f"{i}.wav"
                script.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{out}" \'riff)')
                outs.append(out)
            done = subprocess.run(["festival", "-b", "--pipe"], input="\n".join(script) + "\n", text=True,
                                  capture_output=True)
            missing = [o for o in outs if not o.exists()]
            if done.returncode != 0 or missing:
                raise EngineError(f"festival failed ({len(missing)} of {len(outs)} utterances not spoken): "
                                  f"{done.stderr.strip()[-300:]}")
            audio = []
            for out in outs:
                samples, sr = sf.read(out, dtype="float32")
                audio.append(to_16k(samples, sr))
            return audio


# flite's voices that may speak: never `slt` (the speaker of festival's cmu_us_slt_arctic_hts, held out),
# nor its diphone `kal`/`kal16` (festival's kal_diphone) or `awb_time` (a talking clock)
FLITE_VOICES = ("rms", "awb")


class Flite(Engine):
    name = "flite"
    install = "apt-get install -y flite"

    def check(self) -> None:
        super().check()
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        missing = [v for v in FLITE_VOICES if v not in listed]
        if missing:
            raise EngineError(f"flite has no voice {', '.join(missing)}; install Debian's flite: {self.install}")

    def synthesise(self, text: str, voice: str, rate: float = 1.0, pitch: float = 1.0) -> np.ndarray:
        if voice not in FLITE_VOICES:
            raise EngineError(f"flite: voice {voice!r} may not speak: one of {', '.join(FLITE_VOICES)}")
        with tempfile.TemporaryDirectory(prefix="ds2-flite-") as tmp:
            out = Path(tmp) / "out.wav"
            done = subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.4f}",
                                   "-t", text, "-o", str(out)], capture_output=True, text=True)
            if done.returncode != 0 or not out.exists():
                raise EngineError(f"flite failed on {text!r}: {done.stderr.strip()[-300:]}")
            samples, sr = sf.read(out, dtype="float32")
        return to_16k(samples, sr)


ENGINES: dict[str, Engine] = {e.name: e for e in (Espeak(), Festival(), Flite())}


def split_voice(name: str) -> tuple[Engine, str]:
    """`engine/voice` (e.g. `festival/kal_diphone`) -> (engine, voice); a name without an engine is espeak-ng's."""
    engine, sep, voice = name.partition("/")
    if not sep:
        return ENGINES["espeak-ng"], name
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} in {name!r}: one of {', '.join(ENGINES)}")
    return ENGINES[engine], voice
