"""The offline synthetic corpora, English and Mandarin: fortune sentences spoken by espeak-ng.

English (`language="en"`): sentences from Debian's `fortunes` / `fortunes-min` packages (a
clean subset of the files), normalised to the 28 DS2 characters, de-duplicated, 4-20 words.
Mandarin (`language="zh"`): sentences from Debian's `fortunes-zh` (chinese.u8), normalised by
`normalize_mandarin`, pure Hanzi only, de-duplicated, 4-25 characters; spoken by espeak-ng's
`cmn-latn-pinyin` voice. One description per language (`LANGUAGES`) holds what differs.

The sentence sets of train, dev and test are disjoint. Every utterance gets a voice (an
accent of espeak-ng with one of its voice variants), a speed and a pitch drawn at random;
the voices of dev and test are held out of training, so the test set measures
generalisation to unseen speakers as well as unseen sentences.

Entry point: `ds2 prepare synth data/manifests` (see `ds2 prepare synth --help`),
`ds2 prepare synth --language zh data/manifests` for Mandarin.
"""

from __future__ import annotations

import io
import logging
import random
import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from ds2.progress import progress

from ds2.text import is_hanzi, normalize_english, normalize_mandarin

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
ESPEAK_INSTALL = "apt-get install -y espeak-ng fortunes-min fortunes fortunes-zh"
# ANSI colour codes (chinese.u8 colours its attribution lines)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

log = logging.getLogger(__name__)


def _english_pieces(fortune: str) -> list[str]:
    # Attribution lines ("-- Mark Twain") are not part of the spoken text.
    body = " ".join(ln for ln in fortune.splitlines() if not ln.strip().startswith("--"))
    return re.split(r"(?<=[.!?])\s+", body)


def _mandarin_pieces(fortune: str) -> list[str]:
    # Lines are wrapped mid-sentence: join them without a space; a blank line ends a paragraph
    # (titles such as 要有礼貌 stand alone above the text, without punctuation).
    pieces = []
    for para in re.split(r"\n\s*\n", _ANSI.sub("", fortune)):
        body = "".join(ln.strip() for ln in para.splitlines() if not ln.strip().startswith("--"))
        pieces += re.split(r"(?<=[。！？；…!?;])", body)
    return pieces


def _english_length(text: str) -> int:
    return len(text.split())


def _is_pure_hanzi(text: str) -> bool:
    # espeak-ng reads Latin letters of a Mandarin sentence unpredictably (English or pinyin).
    return all(is_hanzi(c) for c in text)


@dataclass(frozen=True)
class Language:
    """What the corpus of one language takes: its texts, normaliser, voices and defaults."""

    name: str  # Lhotse's `language` of the supervisions
    prefix: str  # manifest names <prefix>_{recordings,supervisions}_<split>.jsonl.gz, utterance ids
    files: tuple[str, ...]  # fortune files of the spoken sentences
    lm_files: tuple[str, ...]  # fortune files of the LM text (any sentence length)
    pieces: Callable[[str], list[str]]  # one fortune -> sentence candidates
    normalize: Callable[[str], str | None]  # None: the sentence cannot be spoken as written
    length: Callable[[str], int]  # sentence length in the unit of the limits (words, characters)
    accents: tuple[str, ...]  # espeak-ng voices, each combined with every variant
    min_len: int  # default sentence length limits, in `length` units
    max_len: int
    speed: tuple[int, int]  # default espeak-ng speed range (-s), uniform
    num_dev_voices: int  # default held-out (accent, variant) voices of dev / test
    num_test_voices: int
    keep: Callable[[str], bool] | None = None  # sentences of the right script (dropped ones are counted)


LANGUAGES = {
    "en": Language(
        name="English", prefix="synth", files=FORTUNE_FILES, lm_files=LM_FORTUNE_FILES,
        pieces=_english_pieces, normalize=normalize_english, length=_english_length, accents=ACCENTS,
        min_len=4, max_len=20, speed=(140, 200), num_dev_voices=40, num_test_voices=60),
    # Mandarin: chinese.u8 of fortunes-zh (5,264 fortunes: modern prose and classical poems; the
    # Tang/Song poem files are left out). The `cmn` voice reads many characters as English words
    # of their pinyin ("jing one"): `cmn-latn-pinyin` says them all in Mandarin. One accent: the
    # voice variants are the speakers (dev and test each hold out 12 of about 95).
    "zh": Language(
        name="Chinese", prefix="synthzh", files=("chinese",), lm_files=("chinese",),
        pieces=_mandarin_pieces, normalize=normalize_mandarin, length=len, accents=("cmn-latn-pinyin",),
        min_len=4, max_len=25, speed=(150, 210), num_dev_voices=12, num_test_voices=12, keep=_is_pure_hanzi),
}


@dataclass(frozen=True)
class SynthOptions:
    """Sizes and ranges of the synthetic corpus; defaults are those of `egs/synth`.

    Fields left at None take the language's default (`LANGUAGES[language]`).
    """

    num_train: int = 3000  # training utterances (sentences may repeat with other voices)
    num_dev: int = 200  # dev utterances, one per dev sentence
    num_test: int = 300  # test utterances, one per test sentence
    num_dev_voices: int | None = None  # held-out (accent, variant) voices for dev (en 40, zh 12)
    num_test_voices: int | None = None  # held-out voices for test, disjoint from dev and train (en 60, zh 12)
    min_words: int | None = None  # sentence length limits: English words (4-20), Mandarin characters (4-25)
    max_words: int | None = None
    speed: tuple[int, int] | None = None  # espeak-ng speed (-s; en (140, 200) words/min, zh (150, 210)), uniform
    pitch: tuple[int, int] = (25, 75)  # espeak-ng pitch 0-99, uniform
    train_noise_prob: float = 0.3  # share of training utterances with added noise
    train_snr_db: tuple[float, float] = (15.0, 35.0)  # signal-to-noise ratio of that noise
    seed: int = 0
    language: str = "en"  # a key of LANGUAGES: "en" (egs/synth) or "zh" (egs/synth_zh)

    def __post_init__(self):
        if self.language not in LANGUAGES:
            raise ValueError(f"unknown language {self.language!r}: one of {', '.join(LANGUAGES)}")
        lang = LANGUAGES[self.language]
        defaults = {"num_dev_voices": lang.num_dev_voices, "num_test_voices": lang.num_test_voices,
                    "min_words": lang.min_len, "max_words": lang.max_len, "speed": lang.speed}
        for field, value in defaults.items():
            if getattr(self, field) is None:
                object.__setattr__(self, field, value)

    @property
    def lang(self) -> Language:
        return LANGUAGES[self.language]


def check_tools(language: str = "en") -> None:
    """Fail with the install command when espeak-ng or the fortunes files are missing."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(f"espeak-ng is not installed; install it with: {ESPEAK_INSTALL}")
    if not all((FORTUNES_DIR / name).exists() for name in LANGUAGES[language].files):
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


def read_sentences(files=None, min_words=None, max_words=None, language="en") -> list[str]:
    """Normalised, de-duplicated sentences of `min_words`-`max_words` words, in file order.

    The language (LANGUAGES) gives the defaults: its spoken files and length limits; for
    Mandarin the limits count characters. Sentences of another script are dropped and counted.
    """
    lang = LANGUAGES[language]
    files = lang.files if files is None else files
    min_words = lang.min_len if min_words is None else min_words
    max_words = lang.max_len if max_words is None else max_words
    seen, sentences, other_script = set(), [], 0
    for name in files:
        raw = (FORTUNES_DIR / name).read_text(encoding="utf-8", errors="replace")
        for fortune in raw.split("\n%\n"):
            for piece in lang.pieces(fortune):
                text = lang.normalize(piece)
                if text is None or text in seen:
                    continue
                if lang.keep is not None and not lang.keep(text):
                    other_script += 1
                    continue
                if min_words <= lang.length(text) <= max_words:
                    seen.add(text)
                    sentences.append(text)
    if other_script:
        log.info("%s: %d sentences left out for letters of another script", "+".join(files), other_script)
    return sentences


def split_voices(variants: list[str], opts: SynthOptions) -> dict[str, list[tuple[str, str]]]:
    """Partition all (accent, variant) voices into disjoint train/dev/test sets."""
    voices = [(a, v) for a in opts.lang.accents for v in variants]
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
                id=f"{opts.lang.prefix}-{split}-{i:06d}",
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

    Writes `output_dir/<prefix>_{recordings,supervisions}_{train,dev,test}.jsonl.gz`, and
    `output_dir/<prefix>_lm_text.txt`: every sentence of the LM's fortune files (any length) that
    is not in dev or test. The prefix is `synth` for English, `synthzh` for Mandarin.
    Returns the paths written. Deterministic for a given `opts.seed`.
    """
    from lhotse import AudioSource, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    lang = opts.lang
    check_tools(opts.language)
    output_dir, audio_dir = Path(output_dir), Path(audio_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)

    sentences = read_sentences(min_words=opts.min_words, max_words=opts.max_words, language=opts.language)
    variants = list_variants()
    utts = plan_utterances(sentences, variants, opts)
    log.info("%d sentences, %d voice variants x %d accents, %d utterances to synthesise",
             len(sentences), len(variants), len(lang.accents), len(utts))

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
                text=utt.text, language=lang.name, speaker=f"{utt.accent}+{utt.variant}",
                custom={"speed": utt.speed, "pitch": utt.pitch, "snr_db": utt.snr_db}))
        for kind, items in (("recordings", RecordingSet.from_recordings(recs)),
                            ("supervisions", SupervisionSet.from_segments(sups))):
            path = output_dir / f"{lang.prefix}_{kind}_{split}.jsonl.gz"
            items.to_file(path)
            written[f"{kind}_{split}"] = path

    held_out = {u.text for u in utts if u.split in ("dev", "test")}
    lm_sentences = read_sentences(lang.lm_files, min_words=1, max_words=10**6, language=opts.language)
    lm_text = output_dir / f"{lang.prefix}_lm_text.txt"
    lm_text.write_text("".join(s + "\n" for s in lm_sentences if s not in held_out), encoding="utf-8")
    written["lm_text"] = lm_text
    return written
