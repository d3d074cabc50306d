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


def kenlm_tool(name: str) -> Path:
    """Path of a KenLM program: $KENLM_BIN, then tools/kenlm/bin, then PATH."""
    for folder in (os.environ.get("KENLM_BIN"), REPO / "tools" / "kenlm" / "bin"):
        if folder and (Path(folder) / name).is_file():
            return Path(folder) / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(f"KenLM's {name} was not found: {INSTALL_HINT}")


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
    lmplz, build_binary = kenlm_tool("lmplz"), kenlm_tool("build_binary")
    text = Path(text)
    as_is = unit == "word" and not text.name.endswith((".jsonl.gz", ".jsonl"))  # lmplz reads it itself
    sentences = read_texts(text) if not as_is else None
    count = len(sentences) if sentences is not None else sum(
        1 for line in text.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip())
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
