"""How many of a Mandarin decoding's substitutions are homophones: what limits a character model
whose acoustics cannot tell 在 from 再 (both zài).

Readings come from pypinyin with every reading of a polyphonic character (heteronym=True): a
substitution counts as a homophone when some reading of the reference character and some reading
of the hypothesis character agree in syllable and tone ("same_tone"), or in syllable alone
("same_syllable", which includes the former).
"""

from __future__ import annotations

from functools import lru_cache

import kaldialign

from ds2.score import EPS, chars_of


@lru_cache(maxsize=None)
def readings(char: str) -> frozenset[str]:
    """The pinyin readings of a character with tone numbers (e.g. {"zai4"}; 5 for the neutral tone);
    empty for a character without one (a Latin letter)."""
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True, errors="ignore")
    return frozenset(r for group in found for r in group if r[-1:].isdigit())


def homophone_counts(refs: dict[str, str], hyps: dict[str, str]) -> dict[str, int]:
    """Character substitutions of `hyps` against `refs` (keyed alike), and how many of them are
    homophones: {"substitutions", "same_tone", "same_syllable"}."""
    counts = {"substitutions": 0, "same_tone": 0, "same_syllable": 0}
    for uid, ref in refs.items():
        for r, h in kaldialign.align(chars_of(ref), chars_of(hyps.get(uid, "")), EPS):
            if r == EPS or h == EPS or r == h:
                continue
            counts["substitutions"] += 1
            a, b = readings(r), readings(h)
            counts["same_tone"] += bool(a & b)
            counts["same_syllable"] += bool({x[:-1] for x in a} & {x[:-1] for x in b})
    return counts


def describe(counts: dict[str, int]) -> str:
    """One line: the share of substitutions that are homophones."""
    n = max(1, counts["substitutions"])
    return (f"{counts['substitutions']} substitutions: {100 * counts['same_tone'] / n:.1f}% homophones "
            f"(same syllable and tone), {100 * counts['same_syllable'] / n:.1f}% the same syllable in any tone")
