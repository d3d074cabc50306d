import pytest

from ds2.text import BpeTokenizer, CharTokenizer, load_tokenizer, normalize_english, normalize_mandarin, tokenizer_from_dict


@pytest.mark.parametrize("raw, expected", [
    ("Hello, World!", "hello world"),
    ("\u2018Don\u2019t panic,\u2019 she said.", "don't panic she said"),
    ("students' books -- 'quoted'", "students books quoted"),
    ("  many   spaces\n\there ", "many spaces here"),
    ("In 1984 it rained", None),  # digits cannot be spelled with the 28 characters
    ("na\u00efve caf\u00e9", None),  # accented letters are not in the vocabulary
    ("?!...", None),
])
def test_normalize_english(raw, expected):
    assert normalize_english(raw) == expected


def test_english_chars_round_trip_and_ids():
    tok = CharTokenizer()
    assert tok.vocab_size == 29 and tok.blank_id == 0
    assert tok.symbols[:3] == ["<blk>", " ", "'"]
    text = "it's a test of every letter abcdefghijklmnopqrstuvwxyz"
    ids = tok.encode(text)
    assert 0 not in ids and len(ids) == len(text)
    assert tok.decode(ids) == text


def test_char_tokenizer_rejects_unknown_characters():
    tok = CharTokenizer()
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("Capital")
    assert not tok.can_encode("x1")
    assert not tok.can_encode("")
    assert tok.can_encode("ok")


def test_mandarin_characters_round_trip(tmp_path):
    tok = CharTokenizer.from_texts(["你好 世界", "我们 学习"])
    assert tok.decode(tok.encode("我们 好")) == "我们 好"
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.symbols == tok.symbols
    assert tokenizer_from_dict(tok.to_dict()).encode("世界") == tok.encode("世界")


def test_tokens_txt_round_trip(tmp_path):
    CharTokenizer().save(tmp_path)
    lines = (tmp_path / "tokens.txt").read_text().splitlines()
    assert lines[0] == "<blk> 0" and lines[1] == "<space> 1" and len(lines) == 29
    assert load_tokenizer(tmp_path).symbols == CharTokenizer().symbols


def test_bpe_round_trip(tmp_path):
    texts = ["the cat sat on the mat", "a dog ate the hat", "that is that", "hello there world"] * 20
    tok = BpeTokenizer.train(texts, vocab_size=40)
    assert tok.symbols[0] == "<blk>" and tok.vocab_size == 40
    for text in ("the cat ate that hat", "hello world"):
        assert tok.decode(tok.encode(text)) == text
    assert not tok.can_encode("zzz qqq")  # letters never seen: <unk>
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("the mat") == tok.encode("the mat")
    assert tokenizer_from_dict(tok.to_dict()).encode("the mat") == tok.encode("the mat")


@pytest.mark.parametrize("raw, normalised", [
    ("我 爱 北京 天安门", "我爱北京天安门"),  # AISHELL-1's word-segmented transcripts lose their spaces
    ("你好，世界！「引号」——《书名》……", "你好世界引号书名"),  # full-width punctuation removed
    ("ＡＢＣ公司的ｉＰｈｏｎｅ很好用。", "ABC公司的IPHONE很好用"),  # full-width Latin -> half-width, upper case
    ("在 Debian 这种规模的项目中", "在DEBIAN这种规模的项目中"),  # mixed Hanzi/Latin: letters kept
    ("\x1b[33m    -- Debian \x1b[32m《行为准则》\x1b[m", "DEBIAN行为准则"),  # terminal colour codes
    ("第〇号", "第〇号"),
])
def test_normalize_mandarin(raw, normalised):
    assert normalize_mandarin(raw) == normalised


@pytest.mark.parametrize("raw", ["２０１６年", "2016年", "第Ⅻ章", "三十℃", "五㎏", "①号", "こんにちは世界", "привет",
                                 "。！？", ""])
def test_normalize_mandarin_drops_what_it_cannot_spell(raw):
    # digits (二零一六 or 两千零一十六?), numbers and symbols NFKC would spell in Latin letters or digits
    # (Ⅻ -> XII: 十二; ℃ -> °C: 摄氏度), other scripts, and nothing left
    assert normalize_mandarin(raw) is None
