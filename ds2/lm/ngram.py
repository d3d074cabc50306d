"""Word n-gram LMs with KenLM: estimate with `lmplz`, binarise with `build_binary`, query.

    ds2 lm train data/lm/text.txt data/lm --order 3 --dev-text data/manifests/synth_supervisions_dev.jsonl.gz
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "build them with tools/install_kenlm.sh (or put lmplz and build_binary on PATH)"
# The highest order KenLM is built for (its default KENLM_MAX_ORDER, in tools/install_kenlm.sh's lmplz
# and setup.py's query library); lmplz estimates bigrams and up.
MIN_ORDER, MAX_ORDER = 2, 6


def kenlm_tool(name: str) -> Path:
    """Path of a KenLM program: $KENLM_BIN, then tools/kenlm/bin, then PATH."""
    for folder in (os.environ.get("KENLM_BIN"), REPO / "tools" / "kenlm" / "bin"):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(f"KenLM's {name} was not found: {INSTALL_HINT}")


def open_text(path: str | Path):
    """A text file for reading line by line, gzipped or not (by its first bytes): LM texts and
    ARPA files of hundreds of millions of lines are streamed, never read whole."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")


def count_sentences(path: str | Path, at_most: int) -> int:
    """Non-blank lines of a text file (plain or gzipped), counted up to `at_most`."""
    count = 0
    with open_text(path) as f:
        for line in f:
            count += bool(line.strip())
            if count >= at_most:
                break
    return count


def read_texts(path: str | Path) -> list[str]:
    """Sentences of a text file (one per line) or of a Lhotse supervision/cut manifest."""
    path = Path(path)
    if path.name.endswith((".jsonl.gz", ".jsonl")):
        opener = gzip.open if path.suffix == ".gz" else open
        texts = []
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                item = json.loads(line)
                sups = item.get("supervisions", [item])  # a cut holds supervisions; a supervision is one
                texts.extend(s["text"] for s in sups if s.get("text"))
        return texts
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def lm_words(text: str, unit: str = "word") -> list[str]:
    """The words an n-gram LM of `unit` sees in `text`: its whitespace-separated words ("word"), or
    every character but spaces ("char": the character LM of text without word boundaries, e.g.
    Mandarin, where KenLM takes each character as a word)."""
    if unit == "char":
        return [c for c in text if not c.isspace()]
    if unit != "word":
        raise ValueError(f"an LM unit is 'word' or 'char', not {unit!r}")
    return text.split()


def lm_unit(tokenizer) -> str:
    """The LM unit a tokenizer's text takes: "word" where the tokens write word boundaries
    (English characters, BPE), "char" where they do not (Mandarin characters)."""
    return "word" if tokenizer.word_boundaries else "char"


def lm_paths(lm_dir: str | Path, order: int) -> tuple[Path, Path]:
    """(ARPA, KenLM binary) paths of the order-`order` LM in `lm_dir`."""
    lm_dir = Path(lm_dir)
    return lm_dir / f"lm_{order}gram.arpa", lm_dir / f"lm_{order}gram.bin"


def train_ngram(text: str | Path, lm_dir: str | Path, order: int = 3, prune: list[int] | None = None,
                memory: str = "10%", unit: str = "word") -> tuple[Path, Path]:
    """Estimate a modified Kneser-Ney `order`-gram on `text`: a text file (one sentence per line) or
    a Lhotse supervision/cut manifest (its texts, e.g. a corpus's training transcripts).

    `unit` "char" makes a character n-gram (each character a word to KenLM, for Mandarin; see
    `lm_words`). `prune` are lmplz's count thresholds per order (e.g. [0, 0, 1] drops trigram
    singletons). Writes `lm_<order>gram.arpa` and `lm_<order>gram.bin` into `lm_dir` atomically and
    returns them.
    """
    if not MIN_ORDER <= order <= MAX_ORDER:
        raise ValueError(f"an n-gram order of {order} is not one KenLM estimates here: {MIN_ORDER} to {MAX_ORDER}")
    lmplz, build_binary = kenlm_tool("lmplz"), kenlm_tool("build_binary")
    text = Path(text)
    as_is = unit == "word" and not text.name.endswith((".jsonl.gz", ".jsonl"))  # lmplz reads it itself
    sentences = read_texts(text) if not as_is else None
    # lmplz reads a plain or gzipped text itself: only check that it holds two sentences
    count = len(sentences) if sentences is not None else count_sentences(text, 2)
    if count < 2:
        raise ValueError(f"{text} holds {'no sentence' if not count else 'only one sentence'}: an n-gram "
                         f"LM needs a text of at least two sentences (one per line)")
    arpa, binary = lm_paths(lm_dir, order)
    arpa.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=arpa.parent) as tmp:
        if sentences is not None:
            lines = (" ".join(lm_words(s, unit)) for s in sentences)
            Path(tmp, "text.txt").write_text("".join(ln + "\n" for ln in lines if ln), encoding="utf-8")
            text = Path(tmp, "text.txt")
        cmd = [str(lmplz), "-o", str(order), "-S", memory, "-T", tmp, "--text", str(text),
               "--arpa", f"{tmp}/lm.arpa", "--discount_fallback"]  # small texts lack the counts KN needs
        if prune:
            if len(prune) > order or any(p < 0 for p in prune):
                raise ValueError(f"prune needs at most {order} non-negative thresholds, not {prune}")
            cmd += ["--prune", *map(str, prune)]
        _run(cmd)
        _run([str(build_binary), "-s", f"{tmp}/lm.arpa", f"{tmp}/lm.bin"])
        os.replace(f"{tmp}/lm.arpa", arpa)
        os.replace(f"{tmp}/lm.bin", binary)
    return arpa, binary


def arpa_counts(arpa: str | Path) -> dict[int, int]:
    """{order: n-gram count} of an ARPA file's header (plain or gzipped); ValueError if it has none."""
    counts, seen_data = {}, False
    with open_text(arpa) as f:
        for line in f:
            line = line.strip()
            if line == "\\data\\":
                seen_data = True
            elif seen_data and line.startswith("ngram "):
                n, c = line[len("ngram "):].split("=")
                counts[int(n)] = int(c)
            elif seen_data and line.startswith("\\"):
                break
            elif not seen_data and line:
                break
    if not counts:
        raise ValueError(f"{arpa} is not an ARPA file: it does not start with \\data\\ and its ngram counts")
    return counts


def spelled_share(arpa: str | Path, tokenizer, sample: int = 2000) -> tuple[int, int, int]:
    """(words sampled, spelled as they are, spelled lower-cased): how many of the first `sample`
    unigrams of `arpa` (plain or gzipped) the tokens write, as they stand and lower-cased.
    LibriSpeech's official ARPAs are upper-case, while char-en and BPE tokens of normalised English
    text are lower-case."""
    words = []
    with open_text(arpa) as f:
        in_unigrams = False
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and (line.startswith("\\") or len(words) >= sample):
                break
            elif in_unigrams and line:
                word = line.split("\t")[1] if "\t" in line else ""
                if word and word.lower() not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    return (len(words), sum(tokenizer.can_encode(w) for w in words),
            sum(tokenizer.can_encode(w.lower()) for w in words))


# Above this many n-grams an imported ARPA gets KenLM's trie, not its probing hash table: KenLM's
# docs call probing "the fastest but uses the most memory" and the trie the one that "uses the least
# memory", which decides for LMs such as LibriSpeech's official 4-gram.
TRIE_ABOVE = 20_000_000


def import_arpa(arpa: str | Path, lm_dir: str | Path, order: int, lowercase: bool = False,
                binary_type: str | None = None) -> tuple[Path, Path]:
    """Take a ready ARPA file (plain or gzipped, e.g. LibriSpeech's official LMs) as the
    `order`-gram LM of `lm_dir`: write it as `lm_<order>gram.arpa` (words lower-cased with
    `lowercase`) and its KenLM binary `lm_<order>gram.bin` (`binary_type` probing or trie; by
    default trie above TRIE_ABOVE n-grams), both atomically. Streams the file line by line.

    ValueError when it is not an ARPA file, is not of order `order`, or holds two words that
    differ only in case while `lowercase` would merge them.
    """
    counts = arpa_counts(arpa)
    if max(counts) != order:
        raise ValueError(f"{arpa} is a {max(counts)}-gram LM, not a {order}-gram: give it as the LM of order "
                         f"{max(counts)}")
    if binary_type is None:
        binary_type = "trie" if sum(counts.values()) > TRIE_ABOVE else "probing"
    if binary_type not in ("probing", "trie"):
        raise ValueError(f"a KenLM binary is probing or trie, not {binary_type!r}")
    build_binary = kenlm_tool("build_binary")
    out_arpa, binary = lm_paths(lm_dir, order)
    out_arpa.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_arpa.parent) as tmp:
        tmp_arpa = Path(tmp, "lm.arpa")
        with open_text(arpa) as src, open(tmp_arpa, "w", encoding="utf-8") as dst:
            in_unigrams, seen = False, {}
            for line in src:
                if lowercase:
                    # the header, section names, numbers and <s> </s> <unk> stay what they mean lower-cased
                    line = line.lower()
                    if line.startswith("\\"):
                        in_unigrams = line.startswith("\\1-grams:")
                    elif in_unigrams and "\t" in line:
                        word = line.split("\t")[1].rstrip("\n")
                        if word in seen:
                            raise ValueError(f"{arpa} holds words that differ only in case (e.g. {word!r} twice once "
                                             f"lower-cased): it cannot be lower-cased")
                        seen[word] = None
                dst.write(line)
        cmd = [str(build_binary), "-s"]
        if binary_type == "trie":
            cmd += ["-S", "10%", "-T", tmp]
        _run(cmd + [binary_type, str(tmp_arpa), f"{tmp}/lm.bin"])
        os.replace(tmp_arpa, out_arpa)
        os.replace(f"{tmp}/lm.bin", binary)
    return out_arpa, binary


def _run(cmd: list[str]):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


KENLM_BINARY_MAGIC = b"mmap lm "  # how every KenLM binary (probing or trie) begins


def check_lm_file(path: str | Path) -> None:
    """Raise ValueError unless `path` looks like a KenLM model: an ARPA file (its first non-blank
    line is \\data\\, plain or gzipped) or a KenLM binary. Cheap: reads the first bytes only."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise ValueError(f"cannot read the language model {path}: {e.strerror}") from None
    if head.startswith(KENLM_BINARY_MAGIC) or head.startswith(b"\x1f\x8b") or head.lstrip().startswith(b"\\data\\"):
        return
    raise ValueError(f"{path} is not a KenLM language model: an ARPA file starts with \\data\\ and a KenLM "
                     f"binary with {KENLM_BINARY_MAGIC.decode().strip()!r} (make one with `ds2 lm train`)")


def load_lm(path: str | Path):
    """A `kenlm.Model` (ARPA or binary); ValueError with KenLM's reason when it cannot be read."""
    import kenlm

    check_lm_file(path)
    try:
        return kenlm.Model(str(path))
    except OSError as e:
        raise ValueError(f"KenLM cannot read {path}: {str(e).splitlines()[0]}") from None


def perplexity(lm, sentences: list[str], unit: str = "word") -> float:
    """Perplexity per LM word (with </s>) of `sentences` under the KenLM model `lm`; with `unit`
    "char", per character of a character LM."""
    log10_total, count = 0.0, 0
    for s in sentences:
        words = lm_words(s, unit)
        log10_total += lm.score(" ".join(words), bos=True, eos=True)
        count += len(words) + 1
    return 10 ** (-log10_total / max(count, 1))


def arpa_vocabulary(arpa: str | Path) -> list[str]:
    """The words of an ARPA file's unigram section, without <s>, </s> and <unk>."""
    words, in_unigrams = [], False
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and line.startswith("\\"):
                break
            elif in_unigrams and line:
                fields = line.split("\t")
                if len(fields) < 2:
                    raise ValueError(f"{arpa}: {line[:60]!r} is not an ARPA unigram line (log10 prob, tab, word)")
                word = fields[1]
                if word not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    return words


LOG10_TO_LN = math.log(10.0)
