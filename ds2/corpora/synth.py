"""The offline synthetic corpora, English and Mandarin: fortune sentences spoken by speech
synthesisers (`ds2.corpora.engines`): espeak-ng, and for English also festival's and flite's voices.

English (`language="en"`): sentences from Debian's `fortunes` / `fortunes-min` packages (a
clean subset of the files), normalised to the 28 DS2 characters, de-duplicated, 4-20 words.
Mandarin (`language="zh"`): sentences from Debian's `fortunes-zh` (chinese.u8), normalised by
`normalize_mandarin`, pure Hanzi only, de-duplicated, 4-25 characters; spoken by espeak-ng's
`cmn-latn-pinyin` voice. One description per language (`LANGUAGES`) holds what differs.

The sentence sets of train, dev and test are disjoint. Every utterance gets a voice (an
accent of espeak-ng with one of its voice variants), a speed and a pitch drawn at random;
the voices of dev and test are held out of training, so the test set measures
generalisation to unseen speakers as well as unseen sentences. A share of the training
utterances is spoken by festival's voices instead (`festival_share`, `train_festival_voices`), and
a share by flite's (`flite_share`: rms and awb, never its slt, the held-out HTS voice's speaker);
one more voice (`held_out_voice`, e.g. festival's HTS voice) never speaks in training, dev or
test: it reads test sentences again as the set `heldout`, which measures generalisation to a
synthesiser never heard. festival's diphone voices and flite's speak a speed at espeak-ng's tempo (`TEMPO`).
Training utterances may be changed (`ds2.data.audio_augment`): resampled to another pitch and
formants (the voice first speaking as much slower, so that the tempo stays), re-synthesised by a
vocoder as parametric synthesis would speak them, noise, reverberation,
a telephone channel, each for a share of them, each utterance's parameters drawn from its own
seed, so that one augmentation's share leaves the others' as they are.

Entry point: `ds2 prepare synth data/manifests` (see `ds2 prepare synth --help`),
`ds2 prepare synth --language zh data/manifests` for Mandarin.
"""

from __future__ import annotations

import logging
import random
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from ds2.corpora.engines import ENGINES, FESTIVAL_VOICES, FLITE_VOICES, split_voice
from ds2.data.audio_augment import add_noise, resample, reverberate, telephone, vocode
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
HELD_OUT_SET = "heldout"  # the set of the held-out voice (test sentences again)
# festival's diphone voices speak slower than espeak-ng at the same rate factor: over egs/synth's
# training corpus (speeds 140-200) 162 and 164 words a minute against espeak-ng's 193, pauses included.
# Their rate is scaled by the ratio, so that an utterance's speed is one tempo whichever voice speaks it.
TEMPO = {"festival/kal_diphone": 193.3 / 162.3, "festival/ked_diphone": 193.3 / 164.1,
         # flite's clustergen voices, over 80 random fortune sentences at rate 1: 167 (rms) and 187 (awb)
         # words a minute against espeak-ng's 201 (three of its voices)
         "flite/rms": 200.9 / 166.8, "flite/awb": 200.9 / 187.1}
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
class FortuneText:
    """Sentences of fortune files: the spoken ones from `files`, the LM's from `lm_files`."""

    files: tuple[str, ...]  # fortune files of the spoken sentences
    lm_files: tuple[str, ...]  # fortune files of the LM text (any sentence length)
    pieces: Callable[[str], list[str]]  # one fortune -> sentence candidates
    normalize: Callable[[str], str | None]  # None: the sentence cannot be spoken as written
    length: Callable[[str], int]  # sentence length in the unit of the limits (words, characters)
    keep: Callable[[str], bool] | None = None  # sentences of the right script (dropped ones are counted)
    install: str = ESPEAK_INSTALL

    def check(self) -> None:
        if not all((FORTUNES_DIR / name).exists() for name in self.files + self.lm_files):
            raise RuntimeError(f"the fortunes texts are not installed; install them with: {self.install}")

    def sentences(self, min_len: int, max_len: int, files: tuple[str, ...] | None = None) -> list[str]:
        """Normalised, de-duplicated sentences of `min_len`-`max_len` units, in file order."""
        files = self.files if files is None else files
        seen, sentences, other_script = set(), [], 0
        for name in files:
            raw = (FORTUNES_DIR / name).read_text(encoding="utf-8", errors="replace")
            for fortune in raw.split("\n%\n"):
                for piece in self.pieces(fortune):
                    text = self.normalize(piece)
                    if text is None or text in seen:
                        continue
                    if self.keep is not None and not self.keep(text):
                        other_script += 1
                        continue
                    if min_len <= self.length(text) <= max_len:
                        seen.add(text)
                        sentences.append(text)
        if other_script:
            log.info("%s: %d sentences left out for letters of another script", "+".join(files), other_script)
        return sentences

    def lm_lines(self) -> list[tuple[str, str]]:
        """(sentence, LM line) of every sentence of the LM's files, any length; the line is the sentence."""
        return [(s, s) for s in self.sentences(1, 10**6, self.lm_files)]


@dataclass(frozen=True)
class PeoplesDailyText:
    """Modern Mandarin: the word-segmented People's Daily of January 1998 (`ds2.corpora.peoples_daily`),
    pieces of at most 25 characters; the LM lines keep the corpus's word boundaries (spaces), which a
    character LM ignores and a word LM reads."""

    max_chars: int = 25

    def check(self) -> None:
        from ds2.corpora.peoples_daily import corpus_file

        corpus_file()

    def _pieces(self) -> tuple[tuple[str, ...], ...]:
        from ds2.corpora.peoples_daily import pieces

        return pieces(self.max_chars)[0]

    def sentences(self, min_len: int, max_len: int) -> list[str]:
        if max_len > self.max_chars:
            raise ValueError(f"the People's Daily pieces are at most {self.max_chars} characters: "
                             f"--max-length {max_len} is more")
        texts = ("".join(p) for p in self._pieces())
        return [t for t in texts if min_len <= len(t) <= max_len]

    def lm_lines(self) -> list[tuple[str, str]]:
        return [("".join(p), " ".join(p)) for p in self._pieces()]


@dataclass(frozen=True)
class Language:
    """What the corpus of one language takes: its texts, voices and defaults."""

    name: str  # Lhotse's `language` of the supervisions
    prefix: str  # manifest names <prefix>_{recordings,supervisions}_<split>.jsonl.gz, utterance ids
    texts: dict  # name -> text source (FortuneText, PeoplesDailyText); the first is the default
    accents: tuple[str, ...]  # espeak-ng voices, each combined with every variant
    min_len: int  # default sentence length limits, in words (English) or characters (Mandarin)
    max_len: int
    speed: tuple[int, int]  # default espeak-ng speed range (-s), uniform
    num_dev_voices: int  # default held-out (accent, variant) voices of dev / test
    num_test_voices: int


LANGUAGES = {
    "en": Language(
        name="English", prefix="synth", texts={"fortunes": FortuneText(
            files=FORTUNE_FILES, lm_files=LM_FORTUNE_FILES, pieces=_english_pieces, normalize=normalize_english,
            length=_english_length)},
        accents=ACCENTS, min_len=4, max_len=20, speed=(140, 200), num_dev_voices=40, num_test_voices=60),
    # Mandarin: modern prose by default, the People's Daily of January 1998 (word-segmented: the word
    # LM's text), or chinese.u8 of fortunes-zh (5,264 fortunes, much of it classical poetry and proverbs;
    # the Tang/Song poem files are left out). The `cmn` voice reads many characters as English words of
    # their pinyin ("jing one"): `cmn-latn-pinyin` says them all in Mandarin. One accent: the voice
    # variants are the speakers (dev and test each hold out 12 of about 95).
    "zh": Language(
        name="Chinese", prefix="synthzh", texts={
            "peoples-daily": PeoplesDailyText(),
            "fortunes": FortuneText(files=("chinese",), lm_files=("chinese",), pieces=_mandarin_pieces,
                                    normalize=normalize_mandarin, length=len, keep=_is_pure_hanzi)},
        accents=("cmn-latn-pinyin",), min_len=4, max_len=25, speed=(150, 210), num_dev_voices=12,
        num_test_voices=12),
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
    pitch: tuple[int, int] = (25, 75)  # espeak-ng pitch 0-99 (50: the voice's own), uniform; festival: F0 x pitch/50
    train_noise_prob: float = 0.3  # share of training utterances with added noise
    train_snr_db: tuple[float, float] = (15.0, 35.0)  # signal-to-noise ratio of that noise
    train_reverb_prob: float = 0.0  # share of training utterances in a random room (reverberation)
    train_t60: tuple[float, float] = (0.2, 0.8)  # reverberation time of those rooms, seconds, uniform
    train_telephone_prob: float = 0.0  # share of training utterances through a telephone channel (300-3400 Hz)
    train_resample_prob: float = 0.0  # share of training utterances resampled (pitch and formants; tempo kept)
    train_resample: tuple[float, float] = (0.85, 1.2)  # their factor, uniform (>1: higher, as a shorter vocal tract)
    train_vocode_prob: float = 0.0  # share of training utterances re-synthesised by a pulse/noise vocoder
    festival_share: float = 0.0  # share of training utterances spoken by festival (train_festival_voices)
    train_festival_voices: tuple[str, ...] = ("kal_diphone", "ked_diphone")
    flite_share: float = 0.0  # share of training utterances spoken by flite's rms and awb (engines.FLITE_VOICES)
    held_out_voice: str | None = None  # `engine/voice` never in train, dev or test; it reads test sentences as set `heldout`
    num_held_out: int = 200  # utterances of the held-out voice (the first test sentences)
    seed: int = 0
    language: str = "en"  # a key of LANGUAGES: "en" (egs/synth) or "zh" (egs/synth_zh)
    text: str | None = None  # the language's text source (a key of its `texts`; None: the first)

    def __post_init__(self):
        if self.language not in LANGUAGES:
            raise ValueError(f"unknown language {self.language!r}: one of {', '.join(LANGUAGES)}")
        lang = LANGUAGES[self.language]
        if self.text is not None and self.text not in lang.texts:
            raise ValueError(f"{lang.name} has no text {self.text!r}: one of {', '.join(lang.texts)}")
        defaults = {"num_dev_voices": lang.num_dev_voices, "num_test_voices": lang.num_test_voices,
                    "min_words": lang.min_len, "max_words": lang.max_len, "speed": lang.speed,
                    "text": next(iter(lang.texts))}
        for field, value in defaults.items():
            if getattr(self, field) is None:
                object.__setattr__(self, field, value)
        for field in ("train_noise_prob", "train_reverb_prob", "train_telephone_prob", "train_resample_prob",
                      "train_vocode_prob", "festival_share", "flite_share"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"{field} must be in [0, 1], not {getattr(self, field)}")
        if self.festival_share > 0 and not self.train_festival_voices:
            raise ValueError("festival_share > 0 needs train_festival_voices")
        unknown = [v for v in self.train_festival_voices if v not in FESTIVAL_VOICES]
        if unknown:
            raise ValueError(f"festival has no voice {', '.join(unknown)}: one of {', '.join(FESTIVAL_VOICES)}")
        if self.festival_share + self.flite_share > 1:
            raise ValueError(f"festival_share {self.festival_share} and flite_share {self.flite_share} add up to "
                             "more than all of training")
        for engine in ("festival", "flite"):
            if engine in self.engines and self.language != "en":
                raise ValueError(f"{engine}'s voices speak English only")
        if self.held_out_voice is not None:
            engine, voice = split_voice(self.held_out_voice)
            if engine.name == "festival" and voice not in FESTIVAL_VOICES:
                raise ValueError(f"festival has no voice {voice}: one of {', '.join(FESTIVAL_VOICES)}")
            if engine.name == "festival" and voice in self.train_festival_voices:
                raise ValueError(f"the held-out voice {self.held_out_voice} is one of the training voices")

    @property
    def engines(self) -> list[str]:
        """The engines this corpus needs."""
        needed = ["espeak-ng"]
        if self.festival_share > 0 or (self.held_out_voice and split_voice(self.held_out_voice)[0].name == "festival"):
            needed.append("festival")
        if self.flite_share > 0:
            needed.append("flite")
        return needed

    @property
    def lang(self) -> Language:
        return LANGUAGES[self.language]

    @property
    def text_source(self):
        """The text source the sentences and the LM text come from."""
        return self.lang.texts[self.text]


def check_tools(language: str = "en", engines: tuple[str, ...] = ("espeak-ng",), text: str | None = None) -> None:
    """Fail with the install command when an engine or the text source (`text`, default the
    language's first) is missing."""
    for name in engines:
        ENGINES[name].check()
    texts = LANGUAGES[language].texts
    texts[text or next(iter(texts))].check()


def list_variants() -> list[str]:
    """Voice variants espeak-ng knows (`espeak-ng --voices=variant`), minus excluded ones."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
    variants = []
    for line in out.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            variants.append(fields[4][3:])
    return sorted(set(variants) - EXCLUDED_VARIANTS)


def read_sentences(min_words=None, max_words=None, language="en", text=None) -> list[str]:
    """Normalised, de-duplicated sentences of `min_words`-`max_words` words of the language's text
    source `text` (default its first), in the source's order.

    The language (LANGUAGES) gives the defaults: its length limits; for Mandarin the limits count
    characters. Sentences of another script are dropped and counted.
    """
    lang = LANGUAGES[language]
    min_words = lang.min_len if min_words is None else min_words
    max_words = lang.max_len if max_words is None else max_words
    return lang.texts[text or next(iter(lang.texts))].sentences(min_words, max_words)


def split_voices(variants: list[str], opts: SynthOptions) -> dict[str, list[tuple[str, str]]]:
    """Partition all (accent, variant) voices into disjoint train/dev/test sets."""
    voices = [(a, v) for a in opts.lang.accents for v in variants]
    random.Random(opts.seed).shuffle(voices)
    n_test, n_dev = opts.num_test_voices, opts.num_dev_voices
    if n_test + n_dev >= len(voices):
        raise ValueError(f"only {len(voices)} voices: cannot hold out {n_test + n_dev}")
    return {"test": voices[:n_test], "dev": voices[n_test:n_test + n_dev], "train": voices[n_test + n_dev:]}


@dataclass(frozen=True)
class Utterance:
    id: str
    split: str
    text: str
    voice: str  # `engine/voice`, or espeak-ng's `<accent>+<variant>`
    speed: int  # words a minute on espeak-ng's scale (175: its normal rate; festival's voices at the same tempo, TEMPO)
    pitch: int  # 0-99 on espeak-ng's scale (50: the voice's normal pitch)
    snr_db: float | None  # None: clean
    seed: int
    reverb_t60: float | None = None  # None: dry
    telephone: bool = False
    resample: float | None = None  # factor of pitch and formants by resampling (tempo kept); None: as spoken
    vocoded: bool = False  # re-synthesised by a source-filter vocoder (`vocode`)


def _degradations(utt: Utterance, opts: SynthOptions) -> Utterance:
    """`utt` with its resampling, reverberation and telephone channel drawn, each from a generator
    of its own seeded by the utterance's seed: an augmentation's share changes no other draw. (The
    noise is drawn with the voice, speed and pitch, as the corpus always drew it.)"""
    if utt.split != "train":
        return utt
    room = random.Random(f"{utt.seed}-reverb")
    t60 = round(room.uniform(*opts.train_t60), 2) if room.random() < opts.train_reverb_prob else None
    phone = random.Random(f"{utt.seed}-telephone").random() < opts.train_telephone_prob
    warp = random.Random(f"{utt.seed}-resample")
    factor = round(warp.uniform(*opts.train_resample), 2) if warp.random() < opts.train_resample_prob else None
    vocoded = random.Random(f"{utt.seed}-vocode").random() < opts.train_vocode_prob
    return dataclasses.replace(utt, reverb_t60=t60, telephone=phone, resample=factor, vocoded=vocoded)


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
    # festival's and flite's shares of training: drawn from a generator of its own, so that the
    # espeak-ng utterances are planned as without them (the same draws; and festival's as without flite)
    engine_rng = random.Random(f"{opts.seed}-engine")
    utts = []
    # Test and dev first: they stay the same utterances whatever the size of train.
    for split, count in (("test", n_test), ("dev", n_dev), ("train", opts.num_train)):
        pool = pools[split]
        for i in range(count):
            accent, variant = rng.choice(voices[split])
            voice = f"{accent}+{variant}"
            if split == "train" and opts.festival_share + opts.flite_share > 0:
                draw = engine_rng.random()
                if draw < opts.festival_share:
                    voice = "festival/" + engine_rng.choice(opts.train_festival_voices)
                elif draw < opts.festival_share + opts.flite_share:  # its voice from the same draw: no other moves
                    voice = "flite/" + FLITE_VOICES[int((draw - opts.festival_share) / opts.flite_share
                                                        * len(FLITE_VOICES))]
            noisy = split == "train" and rng.random() < opts.train_noise_prob
            utts.append(_degradations(Utterance(
                id=f"{opts.lang.prefix}-{split}-{i:06d}",
                split=split,
                text=pool[i % len(pool)],
                voice=voice,
                speed=rng.randint(*opts.speed),
                pitch=rng.randint(*opts.pitch),
                snr_db=round(rng.uniform(*opts.train_snr_db), 1) if noisy else None,
                seed=rng.randrange(2**31),
            ), opts))
    if opts.held_out_voice:
        # the held-out voice reads the first test sentences at its own rate and pitch
        for i, text in enumerate(pools["test"][:opts.num_held_out]):
            utts.append(Utterance(id=f"{opts.lang.prefix}-{HELD_OUT_SET}-{i:06d}", split=HELD_OUT_SET, text=text,
                                  voice=opts.held_out_voice, speed=175, pitch=50, snr_db=None, seed=0))
    return utts


def _synthesise(jobs: list[tuple[Utterance, str]]) -> list[tuple[str, int]]:
    """Speak, degrade and write a chunk of utterances of one engine; their sample counts."""
    engine = split_voice(jobs[0][0].voice)[0]
    # a voice to be resampled by f speaks 1/f as fast first: its tempo stays the drawn speed, and the
    # resampling moves only its pitch and formants (a shorter or longer vocal tract)
    requests = [(u.text, split_voice(u.voice)[1], u.speed / 175 * TEMPO.get(u.voice, 1.0) / (u.resample or 1.0),
                 u.pitch / 50) for u, _ in jobs]
    done = []
    for (utt, path), audio in zip(jobs, engine.synthesise_many(requests)):
        audio = degrade(audio, utt)
        sf.write(path, audio, SAMPLING_RATE, subtype="PCM_16")
        done.append((utt.id, len(audio)))
    return done


def degrade(audio: np.ndarray, utt: Utterance) -> np.ndarray:
    """The utterance's resampling, vocoder, reverberation, noise and telephone channel, in this order
    (the voice, a room, its noise, then the line), each seeded by the utterance."""
    if utt.resample is not None:
        audio = resample(audio, utt.resample)
    if utt.vocoded:
        audio = vocode(audio, np.random.default_rng([utt.seed, 2]))
    if utt.reverb_t60 is not None:
        audio = reverberate(audio, utt.reverb_t60, np.random.default_rng([utt.seed, 1]))
    if utt.snr_db is not None:
        audio = add_noise(audio, utt.snr_db, np.random.default_rng(utt.seed))
    if utt.telephone:
        audio = telephone(audio)
    return audio


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _chunks(jobs: list[tuple[Utterance, str]], size: int) -> list[list[tuple[Utterance, str]]]:
    """Jobs in chunks of one engine and at most `size` utterances (festival speaks a chunk in one process)."""
    by_engine: dict[str, list] = {}
    for job in jobs:
        by_engine.setdefault(split_voice(job[0].voice)[0].name, []).append(job)
    return [items[i:i + size] for items in by_engine.values() for i in range(0, len(items), size)]


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
    check_tools(opts.language, tuple(opts.engines), opts.text)  # EngineError is a RuntimeError
    try:  # before any folder is made: a text that cannot be read (TextSourceError) leaves nothing behind
        sentences = read_sentences(opts.min_words, opts.max_words, opts.language, opts.text)
    except ValueError as e:  # limits the source cannot meet
        raise RuntimeError(str(e)) from None
    output_dir, audio_dir = Path(output_dir), Path(audio_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    variants = list_variants()
    utts = plan_utterances(sentences, variants, opts)
    log.info("%d sentences, %d voice variants x %d accents, %d utterances to synthesise",
             len(sentences), len(variants), len(lang.accents), len(utts))
    if opts.held_out_voice:
        # what the held-out set measures holds only if no other set has the voice
        leaked = {u.split for u in utts if u.split != HELD_OUT_SET and u.voice == opts.held_out_voice}
        if leaked:
            raise RuntimeError(f"the held-out voice {opts.held_out_voice} is planned for {', '.join(sorted(leaked))}")

    jobs = [(u, str(audio_dir / f"{u.id}.wav")) for u in utts]
    num_samples = {}
    chunks = _chunks(jobs, 24)
    # one torch thread per worker: the reverberation convolves with torch, whose thread pool hangs in
    # a fork of a process that has used it (a test, a notebook); forked, not spawned, so that a
    # script without a __main__ guard can call this
    with ProcessPoolExecutor(max_workers=max(1, num_jobs), mp_context=get_context("fork"),
                             initializer=_one_torch_thread) as pool, \
            progress(total=len(jobs), desc="+".join(opts.engines), unit="utt") as bar:
        for done in pool.map(_synthesise, chunks):
            num_samples.update(done)
            bar.update(len(done))

    written = {}
    splits = ("train", "dev", "test") + ((HELD_OUT_SET,) if opts.held_out_voice else ())
    for split in splits:
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
                text=utt.text, language=lang.name, speaker=utt.voice,
                custom={"speed": utt.speed, "pitch": utt.pitch, "snr_db": utt.snr_db, "reverb_t60": utt.reverb_t60,
                        "telephone": utt.telephone, "resample": utt.resample, "vocoded": utt.vocoded}))
        for kind, items in (("recordings", RecordingSet.from_recordings(recs)),
                            ("supervisions", SupervisionSet.from_segments(sups))):
            path = output_dir / f"{lang.prefix}_{kind}_{split}.jsonl.gz"
            items.to_file(path)
            written[f"{kind}_{split}"] = path

    held_out = {u.text for u in utts if u.split in ("dev", "test")}
    lm_lines = opts.text_source.lm_lines()
    lm_text = output_dir / f"{lang.prefix}_lm_text.txt"
    kept = [line for text, line in lm_lines if text not in held_out]
    lm_text.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    log.info("LM text: %d sentences of %s (%d dev and test sentences left out)", len(kept), opts.text,
             len(lm_lines) - len(kept))
    written["lm_text"] = lm_text
    return written
