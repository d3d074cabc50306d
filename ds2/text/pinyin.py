"""Pinyin units of Mandarin text: the targets of the auxiliary CTC head (`model.aux_units: pinyin`).

A character model of Mandarin must learn thousands of output classes, each seen rarely, and which
of them is meant depends on a syllable's tone; the sounds themselves are few. An auxiliary CTC
loss over the pinyin of the transcript (each character's initial, and its final with its tone:
中 -> zh ong1) gives the lower layers a dense target with the tone in it, as hierarchical
multi-task CTC does. Readings come from pypinyin, in context (多音字 and the tone changes of 一 and
不 as pypinyin writes them); a character without a reading (a Latin letter) is the unit <other>.

The inventory is fixed (`UNITS`), so a model's auxiliary head has the same size wherever it is
built; decoding never uses it.
"""

from __future__ import annotations

from functools import lru_cache

from ds2.text.tokenizer import BLANK

INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c",
            "s", "y", "w")
# every final of pypinyin's readings of the CJK Unified Ideographs once the initial is split off
# (v: ü; m, n, ng, ê: interjections such as 嗯 ng)
FINALS = ("a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er", "i", "ia", "ian", "iang", "iao", "ie",
          "in", "ing", "iong", "iu", "m", "n", "ng", "o", "ong", "ou", "u", "ua", "uai", "uan", "uang", "ue", "ui",
          "un", "uo", "v", "ve", "ê")
TONES = "12345"  # 5: the neutral tone
OTHER = "<other>"  # a character without a pinyin reading
UNITS = (BLANK,) + INITIALS + tuple(f + t for f in FINALS for t in TONES) + (OTHER,)
_ID = {u: i for i, u in enumerate(UNITS)}


@lru_cache(maxsize=65536)
def split_syllable(syllable: str) -> tuple[str, ...]:
    """Units of one TONE3 syllable ("zhong1" -> ("zh", "ong1")); (OTHER,) if it is not one."""
    tone = syllable[-1:]
    base = syllable[:-1]
    if tone not in TONES or not base:
        return (OTHER,)
    # a syllable that is a final alone has no initial (嗯 ng2 is not n + g2)
    initial = "" if base in FINALS else next((i for i in INITIALS if base.startswith(i) and len(base) > len(i)), "")
    final = base[len(initial):] + tone
    if final not in _ID:
        return (OTHER,)
    return ((initial,) if initial else ()) + (final,)


def pinyin_units(text: str) -> list[str]:
    """The pinyin units of `text` (characters without spaces, as char-zh tokens write it)."""
    from pypinyin import Style, lazy_pinyin

    readings = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, v_to_u=False,
                           errors=lambda chars: [OTHER] * len(chars))
    units = []
    for reading in readings:
        units.extend(split_syllable(reading) if reading != OTHER else (OTHER,))
    return units


def encode_pinyin(text: str) -> list[int]:
    """Ids (in `UNITS`; 0 is the CTC blank) of `text`'s pinyin units."""
    return [_ID[u] for u in pinyin_units(text)]


def aux_encoder(units: str):
    """The encoder of the auxiliary CTC targets `model.aux_units` names: `encode_pinyin` for
    "pinyin", None for "" (no auxiliary head)."""
    return {"": None, "pinyin": encode_pinyin}[units]
