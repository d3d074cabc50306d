"""Scoring: %WER and %CER with insertion/deletion/substitution counts (kaldialign), and the
`recogs.txt`, `errs.txt`, `wer.txt` files of a decoding folder, in icefall's and Kaldi's style."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import kaldialign

EPS = "*"


def error_counts(ref: list[str], hyp: list[str]) -> dict[str, int]:
    """Insertions, deletions, substitutions, their sum ("errors") and the reference length."""
    d = kaldialign.edit_distance(ref, hyp)
    return {"ins": d["ins"], "del": d["del"], "sub": d["sub"], "errors": d["total"], "ref": len(ref)}


@dataclass
class ErrorRate:
    """Totals of one corpus at one unit (words or characters)."""

    ins: int = 0
    dels: int = 0
    sub: int = 0
    ref: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.sub

    @property
    def rate(self) -> float:
        """Percent errors per reference unit."""
        return 100.0 * self.errors / max(1, self.ref)

    def add(self, counts: dict[str, int]) -> None:
        self.ins += counts["ins"]
        self.dels += counts["del"]
        self.sub += counts["sub"]
        self.ref += counts["ref"]

    def line(self, name: str) -> str:
        """Kaldi's summary line, e.g. `%WER 12.50 [ 25 / 200, 5 ins, 8 del, 12 sub ]`."""
        return (f"%{name} {self.rate:.2f} [ {self.errors} / {self.ref}, {self.ins} ins, "
                f"{self.dels} del, {self.sub} sub ]")


_LINE = re.compile(r"%(\w+) ([\d.]+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]")


def parse_wer_file(path: str | Path) -> dict[str, ErrorRate]:
    """Read the `%WER ...` / `%CER ...` lines of a `wer.txt` back into ErrorRates."""
    out = {}
    for m in _LINE.finditer(Path(path).read_text()):
        name, _, _, ref, ins, dels, sub = m.groups()
        out[name] = ErrorRate(int(ins), int(dels), int(sub), int(ref))
    return out


def chars_of(text: str) -> list[str]:
    """Characters scored by %CER: every character but spaces (for Mandarin and English alike)."""
    return [c for c in text if not c.isspace()]


def char_errors(ref: str, hyp: str) -> dict[str, int]:
    """The character errors of one hypothesis, as `error_counts` gives them: the one %CER of the
    package, summed by `score` (`ds2 decode`), by validation (the dev CER of `ds2 train`) and by
    `ds2 average`, so the three agree on the same hypotheses."""
    return error_counts(chars_of(ref), chars_of(hyp))


def primary_rate(unit: str) -> str:
    """The error rate that ranks decodings and leads their reports: "CER" for text without word
    boundaries (unit "char", Mandarin: its only "word" would be the whole sentence), else "WER"."""
    return "CER" if unit == "char" else "WER"


def word_errors(ref: str, hyp: str) -> dict[str, int]:
    """The word errors of one hypothesis (words: the text split at whitespace)."""
    return error_counts(ref.split(), hyp.split())


def score(refs: dict[str, str], hyps: dict[str, str]) -> tuple[ErrorRate, ErrorRate]:
    """Corpus %WER and %CER of `hyps` against `refs` (both keyed by utterance id)."""
    missing = set(refs) - set(hyps)
    if missing:
        raise ValueError(f"{len(missing)} utterances have no hypothesis, e.g. {sorted(missing)[:3]}")
    wer, cer = ErrorRate(), ErrorRate()
    for uid, ref in refs.items():
        wer.add(word_errors(ref, hyps[uid]))
        cer.add(char_errors(ref, hyps[uid]))
    return wer, cer


def write_decode_dir(out_dir: str | Path, refs: dict[str, str], hyps: dict[str, str],
                     header: str = "", unit: str = "word") -> tuple[ErrorRate, ErrorRate]:
    """Write `recogs.txt`, `errs.txt` and `wer.txt` to `out_dir`; return (%WER, %CER). With `unit`
    "char" (text without word boundaries) recogs.txt and errs.txt align characters, and wer.txt
    gives %CER first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wer, cer = score(refs, hyps)
    ids = sorted(refs)
    units, main, name = (chars_of, cer, "characters") if unit == "char" else (str.split, wer, "words")
    with open(out_dir / "recogs.txt", "w", encoding="utf-8") as f:
        for uid in ids:
            f.write(f"{uid}:\tref={units(refs[uid])}\n{uid}:\thyp={units(hyps[uid])}\n")
    with open(out_dir / "errs.txt", "w", encoding="utf-8") as f:
        f.write(main.line(primary_rate(unit)) + "\n")
        f.write(f"Errors: {main.ins} insertions, {main.dels} deletions, {main.sub} substitutions, "
                f"over {main.ref} reference {name} ({main.ref - main.dels - main.sub} correct)\n")
        f.write("Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, DELETIONS:, "
                "INSERTIONS:\n\nPER-UTT DETAILS: corr or (ref->hyp)\n")
        subs, dels, inss = {}, {}, {}
        for uid in ids:
            pairs = kaldialign.align(units(refs[uid]), units(hyps[uid]), EPS)
            f.write(f"{uid}:\t" + " ".join(r if r == h else f"({r}->{h})" for r, h in pairs) + "\n")
            for r, h in pairs:
                if r == EPS:
                    inss[h] = inss.get(h, 0) + 1
                elif h == EPS:
                    dels[r] = dels.get(r, 0) + 1
                elif r != h:
                    subs[(r, h)] = subs.get((r, h), 0) + 1
        for title, table in (("SUBSTITUTIONS: count ref -> hyp", {f"{r} -> {h}": n for (r, h), n in subs.items()}),
                             ("DELETIONS: count ref", dels), ("INSERTIONS: count hyp", inss)):
            f.write(f"\n{title}\n")
            for key, n in sorted(table.items(), key=lambda kv: (-kv[1], kv[0])):
                f.write(f"{n}   {key}\n")
    lines = [cer.line("CER"), wer.line("WER")] if unit == "char" else [wer.line("WER"), cer.line("CER")]
    summary = (header + "\n" if header else "") + "\n".join(lines) + "\n"
    (out_dir / "wer.txt").write_text(summary)
    return wer, cer


RESULT_FILE = "result.json"  # beside wer.txt: what was decoded and scored, as data (ds2.decode.runner writes it)


def read_result(path: str | Path) -> dict:
    """A result.json written by `ds2.decode.runner.write_result`, with "WER" and "CER" as ErrorRates."""
    record = json.loads(Path(path).read_text())
    for name in ("WER", "CER"):
        c = record[name]
        record[name] = ErrorRate(c["ins"], c["del"], c["sub"], c["ref"])
    return record
