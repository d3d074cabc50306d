"""A miniature LibriSpeech, mini-LibriSpeech and LM corpus laid out as OpenSLR 12, 31 and 11 serve
them, read by espeak-ng's English voices.

`make_archives(folder)` writes what a mirror of https://www.openslr.org/resources holds:
- `12/<part>.tar.gz` for LibriSpeech's seven parts and `31/<part>.tar.gz` for mini-LibriSpeech's
  train-clean-5 and dev-clean-2, each holding `LibriSpeech/<part>/<speaker>/<chapter>/` with
  `<speaker>-<chapter>-<nnnn>.flac` (16 kHz mono FLAC) and `<speaker>-<chapter>.trans.txt`
  (upper-case lines "<speaker>-<chapter>-<nnnn> TEXT"), beside `LibriSpeech/{README,SPEAKERS,
  CHAPTERS,BOOKS,LICENSE}.TXT` as in the real archives;
- `11/librispeech-lm-norm.txt.gz` (upper-case sentences, none of a dev or test set), and
  `11/3-gram.pruned.1e-7.arpa.gz`, `11/4-gram.arpa.gz`: upper-case ARPA n-grams that KenLM's
  lmplz estimates on that text (the official ones are upper-case too).
`write_corpus(folder, parts)` writes the same parts untarred (a copy on disk, for `--corpus-dir`).

One speaker and chapter per set (two in train-clean-100 and train-clean-5), 3-8 utterances per
part, 41 FLACs of 1.3-2.9 s in all (espeak-ng reads fast). What the preparation must handle is
planted as in the real corpus or beyond it: apostrophes inside words (kept) and at word edges
(dropped, as normalize_english does), a FLAC without a transcript line and a transcript line
without a FLAC (train-clean-100), a transcript with a letter the 28 characters cannot spell
(train-other-500, dropped), and an LM text line with one (dropped).

Entry points: `make_archives`, `write_corpus`, `UTTERANCES`, `LM_SENTENCES`.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from recipe_fixture import espeak

MINI_PARTS = ("train-clean-5", "dev-clean-2")
# part -> [(speaker, chapter, espeak-ng voice, speed, pitch)]: speaker and chapter ids of each real part
SPEAKERS = {
    "train-clean-100": [("19", "198", "en-us+m1", 170, 45), ("26", "495", "en+f2", 165, 60)],
    "train-clean-360": [("100", "121669", "en-gb-x-rp+m3", 175, 50)],
    "train-other-500": [("20", "205", "en-us+f4", 160, 55)],
    "dev-clean": [("1272", "128104", "en-us+m2", 170, 48)],
    "dev-other": [("116", "288045", "en-gb-scotland+f1", 165, 58)],
    "test-clean": [("1089", "134686", "en+m4", 170, 42)],
    "test-other": [("1688", "142285", "en-us+f3", 175, 62)],
    "train-clean-5": [("1088", "134315", "en-us+m1", 170, 45), ("1737", "146161", "en+f2", 165, 60)],
    "dev-clean-2": [("1272", "135031", "en-us+m2", 170, 48)],
}
# Sentences in LibriSpeech's style (read books), upper-case as its transcripts are.
TRAIN = [
    "THE OLD MAN WALKED SLOWLY DOWN THE ROAD", "SHE OPENED THE DOOR AND LOOKED INTO THE ROOM",
    "HE DID NOT KNOW WHAT TO SAY TO HER", "THE BOYS' BOOKS LAY OPEN ON THE TABLE",
    "IT WAS A COLD NIGHT IN THE VILLAGE", "THEY SAT BY THE FIRE AND TALKED FOR HOURS",
    "I DON'T THINK HE WILL COME BACK TODAY", "THE SHIP SAILED ACROSS THE WIDE SEA",
    "HER FATHER WAS A GOOD AND KIND MAN", "WE WALKED TOGETHER THROUGH THE GREEN FIELDS",
    "THE CHILDREN PLAYED IN THE GARDEN ALL DAY", "HE WROTE A LONG LETTER TO HIS MOTHER",
    "THE HORSE RAN ACROSS THE OPEN FIELD", "SHE SANG A SONG THAT NOBODY HAD HEARD",
    "THE KING SPOKE TO HIS PEOPLE IN THE HALL", "THEY FOUND THE HOUSE EMPTY AND DARK",
    "A NAÏVE YOUNG MAN CAME TO THE CITY",  # ï: not one of the 28 characters, dropped with its FLAC
]
TRAIN_5 = [
    "THE RIVER RAN QUIETLY PAST THE OLD MILL", "HE LOOKED AT THE SKY AND SMILED",
    "SHE WAS READING A BOOK BY THE WINDOW", "THE DOG SLEPT IN THE SUN ALL MORNING",
    "WE COULD HEAR THE BELLS OF THE CHURCH", "THE WIND BLEW HARD OVER THE HILLS",
    "HE GAVE THE LETTER TO HIS FRIEND", "THEY WALKED HOME IN THE EVENING LIGHT",
]
DEV_TEST = {
    "dev-clean": ["THE OLD MAN LOOKED AT THE DOOR", "SHE TALKED TO HER FATHER", "THE CHILDREN WALKED HOME"],
    "dev-other": ["HE SANG TO THE KING", "THE HOUSE WAS COLD AND DARK", "THEY SAILED ON THE SEA"],
    "test-clean": ["THE HORSE PLAYED IN THE FIELD", "HE DIDN'T WRITE TO HIS MOTHER", "A GOOD MAN SPOKE"],
    "test-other": ["THE SHIP WAS EMPTY", "SHE FOUND THE LETTER IN THE GARDEN", "WE SAT IN THE HALL"],
    "dev-clean-2": ["THE RIVER RAN PAST THE HILLS", "HE READ THE LETTER BY THE WINDOW", "THE DOG HEARD THE BELLS"],
}
# The LM corpus: the training sentences and more of the same books, none of a dev or test set.
LM_SENTENCES = TRAIN[:-1] + TRAIN_5 + [
    "THE OLD MAN SAT BY THE DOOR", "SHE WALKED TO THE WINDOW AND LOOKED OUT", "HE SPOKE TO THE CHILDREN",
    "THE KING AND HIS PEOPLE SAILED ACROSS THE SEA", "HIS MOTHER WROTE A LETTER TO THE KING",
    "THE HORSE SLEPT IN THE FIELD", "THEY FOUND THE DOG IN THE GARDEN", "WE HEARD HER SING IN THE CHURCH",
    "THE HOUSE BY THE RIVER WAS EMPTY", "A GOOD FATHER AND A KIND MOTHER", "HE DIDN'T SAY A WORD",
    "CAFÉ NOIR WAS HER FAVOURITE",  # é: dropped by the normalisation
]


@dataclass(frozen=True)
class Utterance:
    part: str
    speaker: str
    chapter: str
    index: int
    text: str  # the transcript line's text, upper-case
    flac: bool = True  # a FLAC file exists
    transcript: bool = True  # a transcript line exists

    @property
    def id(self) -> str:
        return f"{self.speaker}-{self.chapter}-{self.index:04d}"


def _plan() -> list[Utterance]:
    utts = []
    train_parts = [(p, s) for p in ("train-clean-100", "train-clean-360", "train-other-500") for s in SPEAKERS[p]]
    for i, text in enumerate(TRAIN[:-1]):
        part, (spk, ch, *_) = train_parts[i % len(train_parts)]
        utts.append(Utterance(part, spk, ch, i, text))
    utts.append(Utterance("train-other-500", "20", "205", len(TRAIN) - 1, TRAIN[-1]))  # the one with ï
    for i, text in enumerate(TRAIN_5):
        spk, ch, *_ = SPEAKERS["train-clean-5"][i % 2]
        utts.append(Utterance("train-clean-5", spk, ch, i, text))
    for part, sentences in DEV_TEST.items():
        spk, ch, *_ = SPEAKERS[part][0]
        utts += [Utterance(part, spk, ch, i, t) for i, t in enumerate(sentences)]
    # as a damaged copy might: a FLAC its transcript file lacks, and a transcript line without a FLAC
    utts.append(Utterance("train-clean-100", "19", "198", 90, "THIS LINE IS NOT IN THE TRANSCRIPT", transcript=False))
    utts.append(Utterance("train-clean-100", "26", "495", 91, "THIS SENTENCE WAS NEVER RECORDED", flac=False))
    return utts


UTTERANCES = _plan()


def _voice(utt: Utterance) -> tuple[str, int, int]:
    return next((v, s, p) for spk, ch, v, s, p in SPEAKERS[utt.part] if (spk, ch) == (utt.speaker, utt.chapter))


def speak(utt: Utterance) -> bytes:
    """The FLAC file (16 kHz, mono, 16-bit) of espeak-ng reading `utt` in its speaker's voice."""
    voice, speed, pitch = _voice(utt)
    return espeak(voice, speed, pitch, utt.text.lower(), "FLAC")


def _flacs(utts: list[Utterance], num_jobs: int = 4) -> dict[str, bytes]:
    """id -> FLAC bytes of every utterance with a FLAC, synthesised `num_jobs` at a time."""
    with_flac = [u for u in utts if u.flac]
    with ThreadPoolExecutor(num_jobs) as ex:
        return dict(zip((u.id for u in with_flac), ex.map(speak, with_flac)))


def _top_level(parts: list[str]) -> dict[str, str]:
    """LibriSpeech/*.TXT as the archives hold them (shortened): nothing reads them but people."""
    speakers = {(spk, part) for part in parts for spk, *_ in SPEAKERS[part]}
    chapters = {(ch, spk, part) for part in parts for spk, ch, *_ in SPEAKERS[part]}
    return {
        "README.TXT": "LibriSpeech ASR corpus (a miniature for tests, read by espeak-ng)\n",
        "SPEAKERS.TXT": ";ID  |SEX| SUBSET           |MINUTES| NAME\n" + "".join(
            f"{spk:<5}| M | {part:<17}| 1.00 | espeak-ng\n" for spk, part in sorted(speakers)),
        "CHAPTERS.TXT": ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE\n"
                        + "".join(
            f"{ch:<7}| {spk:<5}| 1.00 | {part:<17}| 1 | 1 | Chapter | Book\n" for ch, spk, part in sorted(chapters)),
        "BOOKS.TXT": ";ID    |TITLE\n1 | Book\n",
        "LICENSE.TXT": "CC BY 4.0\n",
    }


def _part_files(part: str, utts: list[Utterance], flacs: dict[str, bytes]) -> dict[str, bytes]:
    """Path under LibriSpeech/ -> bytes of one part's FLACs and transcripts."""
    files = {}
    for spk, ch, *_ in SPEAKERS[part]:
        mine = sorted((u for u in utts if (u.part, u.speaker, u.chapter) == (part, spk, ch)), key=lambda u: u.id)
        for u in mine:
            if u.flac:
                files[f"{part}/{spk}/{ch}/{u.id}.flac"] = flacs[u.id]
        files[f"{part}/{spk}/{ch}/{spk}-{ch}.trans.txt"] = "".join(
            f"{u.id} {u.text}\n" for u in mine if u.transcript).encode()
    return files


def write_corpus(root: str | Path, parts: list[str], utts: list[Utterance] | None = None) -> Path:
    """LibriSpeech as it is once the parts' archives are untarred: `root/LibriSpeech/<part>/...` and
    `root/LibriSpeech/*.TXT`. Returns `root`."""
    root = Path(root)
    utts = [u for u in (UTTERANCES if utts is None else utts) if u.part in parts]
    flacs = _flacs(utts)
    files = {name: text.encode() for name, text in _top_level(parts).items()}
    for part in parts:
        files.update(_part_files(part, utts, flacs))
    for name, data in files.items():
        path = root / "LibriSpeech" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _tgz(files: dict[str, bytes]) -> bytes:
    """A tar.gz of `files` (path -> bytes) with an entry for every folder, as GNU tar writes them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folders = sorted({str(Path(name).parents[i]) for name in files for i in range(len(Path(name).parents) - 1)})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mtime, info.mode = tarfile.DIRTYPE, 1_400_000_000, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_400_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def estimate_arpa(order: int, text: str) -> bytes:
    """An ARPA `order`-gram that KenLM's lmplz estimates on `text` (its words as they are)."""
    from ds2.lm.ngram import kenlm_tool

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "text.txt").write_text(text, encoding="utf-8")
        subprocess.run([str(kenlm_tool("lmplz")), "-o", str(order), "-S", "5%", "-T", tmp, "--text",
                        f"{tmp}/text.txt", "--arpa", f"{tmp}/lm.arpa", "--discount_fallback"],
                       check=True, capture_output=True)
        return Path(tmp, "lm.arpa").read_bytes()


def make_archives(folder: str | Path, parts: list[str] | None = None) -> dict[str, Path]:
    """Write the archives of `parts` (default: all nine) and the LM resources as OpenSLR serves them:
    `folder/12/<part>.tar.gz`, `folder/31/<part>.tar.gz`, `folder/11/<name>` (serve `folder` as the
    base URL). Returns {"12/dev-clean.tar.gz": path, ...}."""
    folder = Path(folder)
    parts = list(SPEAKERS) if parts is None else parts
    utts = [u for u in UTTERANCES if u.part in parts]
    flacs = _flacs(utts)
    written = {}
    top = {f"LibriSpeech/{name}": text.encode() for name, text in _top_level(parts).items()}
    for part in parts:
        name = f"{31 if part in MINI_PARTS else 12}/{part}.tar.gz"
        files = top | {f"LibriSpeech/{p}": data for p, data in _part_files(part, utts, flacs).items()}
        written[name] = folder / name
        written[name].parent.mkdir(parents=True, exist_ok=True)
        written[name].write_bytes(_tgz(files))
    lm_text = "".join(s + "\n" for s in LM_SENTENCES)
    # the ARPAs are estimated on the sentences that OpenSLR's text would keep (no ï, é): as the
    # official ones, whose words are all upper-case A-Z and apostrophes
    spelled = "".join(s + "\n" for s in LM_SENTENCES if s.isascii())
    resources = {"librispeech-lm-norm.txt.gz": lm_text.encode(),
                 "3-gram.pruned.1e-7.arpa.gz": estimate_arpa(3, spelled),
                 "4-gram.arpa.gz": estimate_arpa(4, spelled)}
    (folder / "11").mkdir(parents=True, exist_ok=True)
    for name, data in resources.items():
        written[f"11/{name}"] = folder / "11" / name
        written[f"11/{name}"].write_bytes(gzip.compress(data, mtime=0))
    return written
