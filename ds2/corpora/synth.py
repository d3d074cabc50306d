"""The offline synthetic English corpus: fortune sentences spoken by espeak-ng.

Sentences come from Debian's `fortunes` / `fortunes-min` packages (a clean subset of
the files), normalised to the 28 DS2 characters, de-duplicated, 4-20 words. The
sentence sets of train, dev and test are disjoint. Every utterance gets a voice (an
English accent of espeak-ng with one of its voice variants), a speed and a pitch drawn
at random; the voices of dev and test are held out of training, so the test set
measures generalisation to unseen speakers as well as unseen sentences.

Entry point: `ds2 prepare synth data/manifests` (see `ds2 prepare synth --help`).
"""

from __future__ import annotations

import io
import logging
import random
import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from ds2.progress import progress

from ds2.text import normalize_english

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Prose files of the fortunes packages: no code, ASCII art, chat logs or offensive files.
FORTUNE_FILES = (
    "cookie", "education", "food", "fortunes", "humorists", "law", "literature", "love",
    "magic", "medicine", "miscellaneous", "people", "pets", "platitudes", "pratchett",
    "riddles", "science", "sports", "tao", "wisdom", "work",
)
# The LM text also reads the other prose files of fortunes-min and fortunes (not the ASCII
# art), and keeps sentences of any length: 3.4x the words of the spoken sentences.
LM_FORTUNE_FILES = FORTUNE_FILES + (
    "art", "computers", "debian", "definitions", "disclaimer", "drugs", "ethnic", "goedel", "kids",
    "knghtbrd", "linux", "linuxcookie", "men-women", "news", "paradoxum", "perl", "politics",
    "songs-poems", "startrek", "translate-me", "zippy",
)
# espeak-ng's own English accents (the mbrola voices need extra packages).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Variants left out of the corpus: whispers are not voiced read speech, and the heavy-echo
# and muted-formant variants below were the worst of all variants on dev (35-46 % CER with
# the first models, against 5-20 % for the rest): unintelligible rather than diverse.
EXCLUDED_VARIANTS = {"whisper", "whisperf", "Alicia", "RicishayMax", "RicishayMax2", "RicishayMax3",
                     "kaukovalta"}
SAMPLING_RATE = 16000
ESPEAK_INSTALL = "apt-get install -y espeak-ng fortunes-min fortunes"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthOptions:
    """Sizes and ranges of the synthetic corpus; defaults are those of `egs/synth`."""

    num_train: int = 3000  # training utterances (sentences may repeat with other voices)
    num_dev: int = 200  # dev utterances, one per dev sentence
    num_test: int = 300  # test utterances, one per test sentence
    num_dev_voices: int = 40  # held-out (accent, variant) voices for dev
    num_test_voices: int = 60  # held-out voices for test, disjoint from dev and train
    min_words: int = 4
    max_words: int = 20
    speed: tuple[int, int] = (140, 200)  # espeak-ng words per minute, uniform
    pitch: tuple[int, int] = (25, 75)  # espeak-ng pitch 0-99, uniform
    train_noise_prob: float = 0.3  # share of training utterances with added noise
    train_snr_db: tuple[float, float] = (15.0, 35.0)  # signal-to-noise ratio of that noise
    seed: int = 0


def check_tools() -> None:
    """Fail with the install command when espeak-ng or the fortunes files are missing."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(f"espeak-ng is not installed; install it with: {ESPEAK_INSTALL}")
    if not (FORTUNES_DIR / "fortunes").exists():
        raise RuntimeError(f"the fortunes texts are not installed; install them with: {ESPEAK_INSTALL}")


def list_variants() -> list[str]:
    """Voice variants espeak-ng knows (`espeak-ng --voices=variant`), minus excluded ones."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
    variants = []
    for line in out.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            variants.append(fields[4][3:])
    return sorted(set(variants) - EXCLUDED_VARIANTS)


def read_sentences(files=FORTUNE_FILES, min_words=4, max_words=20) -> list[str]:
    """Normalised, de-duplicated sentences of `min_words`-`max_words` words, in file order."""
    seen, sentences = set(), []
    for name in files:
        raw = (FORTUNES_DIR / name).read_text(encoding="utf-8", errors="replace")
        for fortune in raw.split("\n%\n"):
            # Attribution lines ("-- Mark Twain") are not part of the spoken text.
            body = " ".join(ln for ln in fortune.splitlines() if not ln.strip().startswith("--"))
            for piece in re.split(r"(?<=[.!?])\s+", body):
                text = normalize_english(piece)
                if text is None or text in seen:
                    continue
                if min_words <= len(text.split()) <= max_words:
                    seen.add(text)
                    sentences.append(text)
    return sentences


def split_voices(variants: list[str], opts: SynthOptions) -> dict[str, list[tuple[str, str]]]:
    """Partition all (accent, variant) voices into disjoint train/dev/test sets."""
    voices = [(a, v) for a in ACCENTS for v in variants]
    random.Random(opts.seed).shuffle(voices)
    n_test, n_dev = opts.num_test_voices, opts.num_dev_voices
    if n_test + n_dev >= len(voices):
        raise ValueError(f"only {len(voices)} voices: cannot hold out {n_test + n_dev}")
    return {"test": voices[:n_test], "dev": voices[n_test:n_test + n_dev], "train": voices[n_test + n_dev:]}


def speak(text: str, accent: str, variant: str, speed: int, pitch: int) -> np.ndarray:
    """16 kHz float32 audio of espeak-ng speaking `text`."""
    cmd = ["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch), "--stdout", text]
    wav = subprocess.run(cmd, capture_output=True, check=True).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    if sr != SAMPLING_RATE:
        g = np.gcd(sr, SAMPLING_RATE)
        audio = resample_poly(audio, SAMPLING_RATE // g, sr // g).astype(np.float32)
    return audio


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white or brown-ish noise at `snr_db` relative to the speech power."""
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    if rng.random() < 0.5:  # low-frequency noise: a leaky integral of white noise
        noise = np.cumsum(noise) * 0.02
        noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    speech_power = float(np.mean(audio**2)) + 1e-10
    noise_power = float(np.mean(noise**2)) + 1e-10
    noise *= np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return np.clip(audio + noise, -1.0, 1.0)


@dataclass(frozen=True)
class Utterance:
    id: str
    split: str
    text: str
    accent: str
    variant: str
    speed: int
    pitch: int
    snr_db: float | None  # None: clean
    seed: int


def plan_utterances(sentences: list[str], variants: list[str], opts: SynthOptions) -> list[Utterance]:
    """Decide every utterance (text, voice, speed, pitch, noise) from the seed alone."""
    rng = random.Random(opts.seed)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    n_test, n_dev = opts.num_test, opts.num_dev
    if n_test + n_dev + 1 > len(sentences):
        raise ValueError(f"only {len(sentences)} sentences for {n_test} test and {n_dev} dev ones")
    pools = {
        "test": [sentences[i] for i in order[:n_test]],
        "dev": [sentences[i] for i in order[n_test:n_test + n_dev]],
        "train": [sentences[i] for i in order[n_test + n_dev:]],
    }
    voices = split_voices(variants, opts)
    utts = []
    # Test and dev first: they stay the same utterances whatever the size of train.
    for split, count in (("test", n_test), ("dev", n_dev), ("train", opts.num_train)):
        pool = pools[split]
        for i in range(count):
            accent, variant = rng.choice(voices[split])
            noisy = split == "train" and rng.random() < opts.train_noise_prob
            utts.append(Utterance(
                id=f"synth-{split}-{i:06d}",
                split=split,
                text=pool[i % len(pool)],
                accent=accent,
                variant=variant,
                speed=rng.randint(*opts.speed),
                pitch=rng.randint(*opts.pitch),
                snr_db=round(rng.uniform(*opts.train_snr_db), 1) if noisy else None,
                seed=rng.randrange(2**31),
            ))
    return utts


def _synthesise(args: tuple[Utterance, str]) -> tuple[str, int]:
    utt, path = args
    audio = speak(utt.text, utt.accent, utt.variant, utt.speed, utt.pitch)
    if utt.snr_db is not None:
        audio = add_noise(audio, utt.snr_db, np.random.default_rng(utt.seed))
    sf.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
    return utt.id, len(audio)


def prepare_synth(output_dir: str | Path, audio_dir: str | Path, opts: SynthOptions = SynthOptions(),
                  num_jobs: int = 2) -> dict[str, Path]:
    """Synthesise the corpus and write Lhotse manifests and the LM text.

    Writes `output_dir/synth_{recordings,supervisions}_{train,dev,test}.jsonl.gz`, and
    `output_dir/synth_lm_text.txt`: every sentence of the LM's fortune files (any length) that
    is not in dev or test.
    Returns the paths written. Deterministic for a given `opts.seed`.
    """
    from lhotse import AudioSource, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    check_tools()
    output_dir, audio_dir = Path(output_dir), Path(audio_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)

    sentences = read_sentences(min_words=opts.min_words, max_words=opts.max_words)
    variants = list_variants()
    utts = plan_utterances(sentences, variants, opts)
    log.info("%d sentences, %d voice variants x %d accents, %d utterances to synthesise",
             len(sentences), len(variants), len(ACCENTS), len(utts))

    jobs = [(u, str(audio_dir / f"{u.id}.wav")) for u in utts]
    num_samples = {}
    with ProcessPoolExecutor(max_workers=max(1, num_jobs)) as pool:
        for utt_id, n in progress(pool.map(_synthesise, jobs, chunksize=16), total=len(jobs),
                              desc="espeak-ng", unit="utt"):
            num_samples[utt_id] = n

    written = {}
    for split in ("train", "dev", "test"):
        recs, sups = [], []
        for utt, path in jobs:
            if utt.split != split:
                continue
            n = num_samples[utt.id]
            recs.append(Recording(id=utt.id, sampling_rate=SAMPLING_RATE, num_samples=n,
                                  duration=n / SAMPLING_RATE,
                                  sources=[AudioSource(type="file", channels=[0], source=str(Path(path).resolve()))]))
            sups.append(SupervisionSegment(
                id=utt.id, recording_id=utt.id, start=0.0, duration=n / SAMPLING_RATE, channel=0,
                text=utt.text, language="English", speaker=f"{utt.accent}+{utt.variant}",
                custom={"speed": utt.speed, "pitch": utt.pitch, "snr_db": utt.snr_db}))
        for kind, items in (("recordings", RecordingSet.from_recordings(recs)),
                            ("supervisions", SupervisionSet.from_segments(sups))):
            path = output_dir / f"synth_{kind}_{split}.jsonl.gz"
            items.to_file(path)
            written[f"{kind}_{split}"] = path

    held_out = {u.text for u in utts if u.split in ("dev", "test")}
    lm_sentences = read_sentences(LM_FORTUNE_FILES, min_words=1, max_words=10**6)
    lm_text = output_dir / "synth_lm_text.txt"
    lm_text.write_text("".join(s + "\n" for s in lm_sentences if s not in held_out), encoding="utf-8")
    written["lm_text"] = lm_text
    return written
