"""How far can a Mandarin character model get when its acoustics are perfect? Bounds from the text alone.

A synthesiser reads every character by its pinyin syllable and tone, so characters of the same
reading (在/再 zài, 他/她/它 tā) sound exactly alike. Given the true reading of every character
(pypinyin, in context), this prints the CER on each test set of a recipe that ever-correct
acoustics would still score:

- context-free: each reading becomes the training text's most frequent character with it
  (what a model that learns nothing beyond the syllable does);
- reading context: the most frequent character for the reading between its neighbours'
  readings in the training text (a model that also learns the syllables around it), falling
  back to context-free;
- LM: a beam search (16) over the 12 most frequent training characters of every reading,
  scored by the recipe's character n-gram (what `beam` could do with perfect acoustics);
- unseen: characters that never occur in training (no model can write them).

    .venv/bin/python bench/homophone_bound.py egs/synth_zh          # after its stage 4
    .venv/bin/python bench/homophone_bound.py egs/synth_zh --prefix synthzh --sets dev,test --lm-order 3
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import kaldialign


def readings(text: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda chars: list(chars))
    assert len(out) == len(text), (text, out)
    return out


def texts(recipe: Path, prefix: str, set_name: str) -> list[str]:
    from lhotse import load_manifest

    return [s.text for s in load_manifest(recipe / "data" / "manifests" / f"{prefix}_supervisions_{set_name}.jsonl.gz")]


def context(r: list[str], i: int) -> tuple[str, str, str]:
    return (r[i - 1] if i else "<s>", r[i], r[i + 1] if i + 1 < len(r) else "</s>")


def lm_decode(lm, r: list[str], by_reading: dict[str, Counter], beam: int = 16, candidates: int = 12) -> str:
    import kenlm

    start = kenlm.State()
    lm.BeginSentenceWrite(start)
    beams = [(0.0, "", start)]
    for q in r:
        cands = [c for c, _ in by_reading[q].most_common(candidates)] or ["?"]
        grown = []
        for score, text, state in beams:
            for c in cands:
                out = kenlm.State()
                grown.append((score + lm.BaseScore(state, c, out), text + c, out))
        grown.sort(key=lambda b: -b[0])
        beams = grown[:beam]
    return max(beams, key=lambda b: b[0] + lm.BaseScore(b[2], "</s>", kenlm.State()))[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipe", type=Path, help="recipe folder (e.g. egs/synth_zh) after its stage 4")
    p.add_argument("--prefix", default="synthzh")
    p.add_argument("--train", default="train")
    p.add_argument("--sets", default="dev,test")
    p.add_argument("--lm-order", type=int, default=3)
    args = p.parse_args()

    import kenlm

    train = texts(args.recipe, args.prefix, args.train)
    uni: dict[str, Counter] = defaultdict(Counter)
    ctx: dict[tuple, Counter] = defaultdict(Counter)
    seen = Counter()
    for t in train:
        r = readings(t)
        for i, c in enumerate(t):
            uni[r[i]][c] += 1
            ctx[context(r, i)][c] += 1
            seen[c] += 1
    lm = kenlm.Model(str(args.recipe / "data" / "lm" / f"lm_{args.lm_order}gram.bin"))
    print("## What perfect acoustics would score\n")
    print("espeak-ng reads every character by its pinyin syllable and tone, so characters of one reading sound "
          "alike (在/再 zài). Given the true reading of every character (pypinyin), choosing the characters from "
          f"the training text ({len(train)} sentences, {sum(seen.values())} characters, {len(seen)} distinct, "
          f"{len(uni)} readings) still scores these CERs: the most frequent character of each reading "
          "(context-free), of the reading between its neighbours' readings (reading context), and a beam search "
          f"over the characters of each reading with the {args.lm_order}-gram character LM (`bench/homophone_bound.py`). "
          "Greedy decoding tells homophones apart only by the context the model learned from the training text; the "
          "LM methods also have the LM's.\n")
    print(f"| set | characters | unseen in train % | context-free CER % | reading-context CER % | "
          f"{args.lm_order}-gram LM CER % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for set_name in args.sets.split(","):
        errors = Counter()
        n = unseen = 0
        for t in texts(args.recipe, args.prefix, set_name):
            r = readings(t)
            free = "".join(uni[q].most_common(1)[0][0] if uni[q] else "?" for q in r)
            near = "".join(ctx[context(r, i)].most_common(1)[0][0] if ctx[context(r, i)] else free[i]
                           for i in range(len(t)))
            for name, hyp in (("free", free), ("context", near), ("lm", lm_decode(lm, r, uni))):
                errors[name] += kaldialign.edit_distance(list(t), list(hyp))["total"]
            n += len(t)
            unseen += sum(c not in seen for c in t)
        print(f"| {set_name} | {n} | {100 * unseen / n:.1f} | {100 * errors['free'] / n:.1f} | "
              f"{100 * errors['context'] / n:.1f} | {100 * errors['lm'] / n:.1f} |")


if __name__ == "__main__":
    main()
