"""egs/aishell from download to RESULTS.md, on a miniature AISHELL-1 served from 127.0.0.1.

tests/aishell_fixture.py writes the two OpenSLR 33 archives as they are laid out there
(data_aishell.tgz of per-speaker tar.gz archives and the word-segmented transcript, and
resource_aishell.tgz); a local HTTP server serves them as `<base-url>/33/...`, and
`egs/aishell/run.sh --base-url` runs every stage on them with a tiny model. The fast tests check
the one-line errors of `ds2 prepare aishell`: a copy on disk without its transcript, a download
that gets 404 or no connection.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aishell_fixture import UTTERANCES, make_archives, write_corpus
from recipe_fixture import edit_distance
from local_http import serving

from ds2.lm.ngram import arpa_vocabulary

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
# A time stride of 6 (17 frames/s, still several per character: every cut is kept) halves the frames
# that the searches extend by each of the ~240 characters while the tiny model's output is flat: the
# beam search's tuning grid took 30 s of this test at stride 3.
OVERRIDES = ("train.epochs=2 train.max_duration=30 train.lr=1e-2 train.warmup_steps=5 train.num_workers=0 "
             "train.spec_augment=false train.save_every_steps=0 model.rnn_layers=1 model.rnn_hidden=32 "
             "model.conv_channels=[4] model.conv_kernels=[[11,21]] model.conv_strides=[[6,4]]")
SETS = ("dev", "test")
METHODS = ("greedy", "ctc-graph", "beam", "hlg", "nbest-rescore", "hlg-word")  # hlg-word: hlg over the word 3-gram
HANZI_OR_LATIN = re.compile(r"[\u4e00-\u9fffA-Z]+")


def prepare_aishell(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ds2", "prepare", "aishell", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


# -- fast: the one-line errors of `ds2 prepare aishell` ------------------------------------------


def test_a_copy_on_disk_is_prepared_and_one_without_transcript_fails_naming_it(tmp_path):
    utts = [u for u in UTTERANCES if u.id in ("BAC009S0002W0166", "BAC009S0724W0121", "BAC009S0764W0121")]
    copy = write_corpus(tmp_path / "aishell", utts)
    ok = prepare_aishell("out", "--corpus-dir", copy / "data_aishell", cwd=tmp_path)  # data_aishell itself is fine
    assert ok.returncode == 0, ok.stderr
    from lhotse import SupervisionSet

    sups = SupervisionSet.from_file(tmp_path / "out" / "aishell_supervisions_train.jsonl.gz")
    assert [s.text for s in sups] == ["我用ATM机取钱很方便"]  # from "我 用 ＡＴＭ 机 取 钱 ， 很 方便 。"
    # the word LM's text: the same transcript with AISHELL-1's word boundaries, each word normalised alike
    words = (tmp_path / "out" / "aishell_words_train.txt").read_text(encoding="utf-8")
    assert words == "我 用 ATM 机 取 钱 很 方便\n"

    (copy / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt").unlink()
    bad = prepare_aishell("out2", "--corpus-dir", copy, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"Error: {copy} is not a copy of AISHELL-1: missing data_aishell/transcript/aishell_transcript_v0.8.txt"]
    assert not (tmp_path / "out2").exists()


def test_a_copy_with_speaker_archives_still_tarred_says_to_untar_them(tmp_path):
    wav = tmp_path / "aishell" / "data_aishell" / "wav"
    wav.mkdir(parents=True)
    (wav / "S0002.tar.gz").write_bytes(b"")
    (tmp_path / "aishell" / "data_aishell" / "transcript").mkdir()
    (tmp_path / "aishell" / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt").write_text("")
    proc = prepare_aishell("out", "--corpus-dir", tmp_path / "aishell", cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "missing data_aishell/wav/train, data_aishell/wav/dev, data_aishell/wav/test" in line
    assert line.endswith(f"holds 1 speaker archive not untarred (S0002.tar.gz): untar it there first, "
                         f"`cd {wav} && tar xzf S0002.tar.gz`)")


def test_a_download_that_gets_404_fails_naming_the_url(tmp_path, http_root):
    _, base_url = http_root  # serves an empty folder
    proc = prepare_aishell("data/manifests", "--base-url", base_url, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: cannot download {base_url}/33/data_aishell.tgz: HTTP 404 File not found"]
    assert not list((tmp_path / "data" / "download").glob("*.tgz"))  # no empty archive left to "resume"


def test_a_download_that_is_no_archive_fails_naming_it(tmp_path, http_root):
    www, base_url = http_root
    (www / "33").mkdir()
    (www / "33" / "data_aishell.tgz").write_text("<html>mirror maintenance</html>")
    proc = prepare_aishell("data/manifests", "--base-url", base_url, cwd=tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]  # after the download's progress bar
    assert line.startswith(f"Error: data/download/data_aishell.tgz (from {base_url}/33/data_aishell.tgz) is not a "
                           "complete tar.gz archive") and line.endswith("delete it and run again")


def test_a_download_without_a_server_fails_naming_the_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
        base_url = f"http://127.0.0.1:{s.getsockname()[1]}/resources"
        proc = prepare_aishell("data/manifests", "--base-url", base_url, cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"Error: cannot download {base_url}/33/data_aishell.tgz: ") and "refused" in line


# -- slow: the whole recipe ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def aishell_recipe(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    www = tmp_path_factory.mktemp("www")
    make_archives(www / "33")
    root = tmp_path_factory.mktemp("repo")
    (root / "egs").mkdir()
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    shutil.copytree(REPO / "egs" / "aishell", root / "egs" / "aishell",
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    (root / "utils").symlink_to(REPO / "utils")
    recipe = root / "egs" / "aishell"
    with serving(www) as url:
        proc = subprocess.run(["bash", "run.sh", "--base-url", url,
                               "--num-jobs", "1", "--decode-jobs", "1", "--avg", "2", "--overrides", OVERRIDES],
                              cwd=recipe, env=ENV, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"run.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return recipe, proc


def _texts(recipe: Path, split: str) -> dict[str, str]:
    from lhotse import SupervisionSet

    return {s.id: s.text for s in SupervisionSet.from_file(
        recipe / "data" / "manifests" / f"aishell_supervisions_{split}.jsonl.gz")}


@pytest.mark.slow
def test_the_download_is_prepared_into_normalised_manifests(aishell_recipe):
    recipe, proc = aishell_recipe
    from lhotse import RecordingSet

    expected = {u.id: u for u in UTTERANCES if u.wav and u.transcript and "3" not in u.words}
    for split in ("train", "dev", "test"):
        texts = _texts(recipe, split)
        recordings = RecordingSet.from_file(recipe / "data" / "manifests" / f"aishell_recordings_{split}.jsonl.gz")
        assert sorted(r.id for r in recordings) == sorted(texts)  # none without its transcript
        assert sorted(texts) == sorted(i for i, u in expected.items() if u.split == split)
        assert all(HANZI_OR_LATIN.fullmatch(t) for t in texts.values()), texts  # no spaces, no punctuation
        for uid, text in texts.items():
            if HANZI_OR_LATIN.fullmatch(expected[uid].words.replace(" ", "")):
                assert text == expected[uid].words.replace(" ", "")
    train = _texts(recipe, "train")
    assert train["BAC009S0002W0166"] == "我用ATM机取钱很方便" and train["BAC009S0003W0167"] == "苹果发布了新款IPHONE"
    # the sentence with "3" and the WAV without a transcript are dropped, and counted
    assert "BAC009S0004W0168" not in train and "BAC009S0003W0900" not in train
    assert re.search(r"aishell train: 47 utterances, .*1 WAVs without a transcript, 1 transcripts that cannot be "
                     r"spelled", proc.stderr)
    # the manifests point at the untarred download, whose per-speaker archives were untarred too
    assert (recipe / "data" / "download" / "aishell" / "data_aishell" / "wav" / "dev" / "S0724").is_dir()


@pytest.mark.slow
def test_the_word_lm_text_keeps_the_transcripts_word_boundaries(aishell_recipe):
    """data/manifests/aishell_words_train.txt: one line per training supervision, in their order, its
    text with the transcript's word boundaries; the word 3-gram (data/lm_word) and its lang dir
    (data/lang_word: the tokens of data/lang_char, each word spelled with its characters)."""
    recipe, _ = aishell_recipe
    from lhotse import SupervisionSet

    sups = list(SupervisionSet.from_file(recipe / "data" / "manifests" / "aishell_supervisions_train.jsonl.gz"))
    lines = (recipe / "data" / "manifests" / "aishell_words_train.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sups) == 47
    assert [line.replace(" ", "") for line in lines] == [s.text for s in sups]
    words = {u.id: u.words for u in UTTERANCES}
    for line, sup in zip(lines, sups):
        assert line.split(" ") == line.split()  # single spaces between words, none around
        if all(HANZI_OR_LATIN.fullmatch(w) for w in words[sup.id].split()):  # nothing to normalise
            assert line == words[sup.id]
    by_id = dict(zip((s.id for s in sups), lines))
    # full-width letters made half-width and upper-case, punctuation words dropped; the boundaries stay
    assert by_id["BAC009S0002W0166"] == "我 用 ATM 机 取 钱 很 方便"  # 我 用 ＡＴＭ 机 取 钱 ， 很 方便 。
    assert by_id["BAC009S0003W0167"] == "苹果 发布 了 新款 IPHONE"  # 苹果 发布 了 新款 ｉＰｈｏｎｅ ！
    assert by_id["BAC009S0004W0129"] == "股市 今天 小幅 下跌"

    vocabulary = {w for line in lines for w in line.split()}
    arpa = recipe / "data" / "lm_word" / "lm_3gram.arpa"
    assert set(arpa_vocabulary(arpa)) - {"<s>", "</s>", "<unk>"} == vocabulary
    lang_word, lang_char = recipe / "data" / "lang_word", recipe / "data" / "lang_char"
    assert (lang_word / "tokens.txt").read_text() == (lang_char / "tokens.txt").read_text()
    lexicon = dict(line.split(" ", 1) for line in (lang_word / "lexicon.txt").read_text(encoding="utf-8").splitlines())
    assert lexicon == {w: " ".join(w) for w in vocabulary}  # 方便 -> 方 便, ATM -> A T M
    assert (lang_word / "unspelled.txt").read_text() == ""  # training's words: every character is a token
    assert (lang_word / "HLG.fst").stat().st_size > 0 and (lang_char / "HLG.fst").is_file()
    # hlg-word is hlg over that graph, tuned into a file of its own
    exp = recipe / "exp" / "ds2"
    tuned = json.loads((exp / "tuned" / "hlg-word.json").read_text())
    assert tuned["method"] == "hlg" and tuned["tuned_on"] == "dev"
    for s in SETS:
        result = json.loads((exp / f"decode_{s}_hlg-word" / "result.json").read_text())
        assert (result["name"], result["method"]) == ("hlg-word", "hlg")
        assert result["settings"]["lang_dir"] == "data/lang_word"
        assert result["settings"]["lm_scale"] == tuned["params"]["lm_scale"]
        assert result["weights_from"] == ["exp/ds2/tuned/hlg-word.json"]
        plain = json.loads((exp / f"decode_{s}_hlg" / "result.json").read_text())
        assert plain["settings"]["lang_dir"] == "data/lang_char" and plain["weights_from"] == ["exp/ds2/tuned/hlg.json"]


@pytest.mark.slow
def test_dev_and_test_hold_characters_training_never_saw(aishell_recipe):
    recipe, _ = aishell_recipe
    tokens = {line.split()[0] for line in (recipe / "data" / "lang_char" / "tokens.txt").read_text().splitlines()}
    assert "<unk>" in tokens and {"A", "T", "M"} <= tokens
    train_chars = set("".join(_texts(recipe, "train").values()))
    assert tokens - {"<blk>", "<unk>"} == train_chars
    for split, unseen in (("dev", "熊猫"), ("test", "虎山睡觉")):
        assert set(unseen) <= set("".join(_texts(recipe, split).values())) - train_chars


@pytest.mark.slow
def test_results_have_a_cer_row_per_set_and_method(aishell_recipe):
    recipe, _ = aishell_recipe
    results = (recipe / "RESULTS.md").read_text()
    header = next(line for line in results.splitlines() if line.startswith("| experiment | method |"))
    assert header == "| experiment | method | dev %CER | dev %SER | test %CER | test %SER |"
    for method in METHODS:
        row = next(line for line in results.splitlines() if line.startswith(f"| ds2 | {method} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][2:]
        assert len(cells) == 4 and all(re.fullmatch(r"\d+\.\d\d", c) for c in cells), row
        for s in SETS:
            wer_txt = (recipe / "exp" / "ds2" / f"decode_{s}_{method}" / "wer.txt").read_text()
            cer_line = next(line for line in wer_txt.splitlines() if line.startswith("%CER"))
            assert f"| ds2 | {method} | {s} | {cer_line} |" in results


@pytest.mark.slow
def test_cer_is_the_edit_distance_of_characters_without_spaces(aishell_recipe):
    """Each decoding's %CER (wer.txt, result.json) is recomputed here from recogs.txt: the character
    edit distance of reference and hypothesis, spaces removed, over every reference character,
    the unseen ones included."""
    recipe, _ = aishell_recipe
    from lhotse import CutSet

    for s in SETS:
        texts = _texts(recipe, s)
        cut_texts = {c.id: c.supervisions[0].text
                     for c in CutSet.from_file(recipe / "data" / "fbank" / f"aishell_cuts_{s}.jsonl.gz")}
        for method in METHODS:
            out = recipe / "exp" / "ds2" / f"decode_{s}_{method}"
            refs, hyps = {}, {}
            for line in (out / "recogs.txt").read_text(encoding="utf-8").splitlines():
                uid, field = line.split(":\t")
                kind, chars = field.split("=", 1)
                (refs if kind == "ref" else hyps)[uid] = "".join(ast.literal_eval(chars)).replace(" ", "")
            # every cut of the set, with its supervision's text (the manifest's text, once per utterance)
            assert refs == cut_texts and sorted(refs.values()) == sorted(texts.values())
            errors = sum(edit_distance(list(refs[u]), list(hyps[u])) for u in refs)
            ref_chars = sum(len(t) for t in refs.values())
            result = json.loads((out / "result.json").read_text())
            assert result["primary"] == "CER"
            assert (result["CER"]["errors"], result["CER"]["ref"]) == (errors, ref_chars), (s, method)
            assert result["CER"]["rate"] == pytest.approx(100 * errors / ref_chars, abs=1e-4)
            cer_line = next(line for line in (out / "wer.txt").read_text().splitlines() if line.startswith("%CER"))
            assert cer_line.startswith(f"%CER {100 * errors / ref_chars:.2f} [ {errors} / {ref_chars},"), cer_line


@pytest.mark.slow
def test_help_lists_the_recipe_and_the_shared_options(aishell_recipe):
    recipe, _ = aishell_recipe
    out = subprocess.run(["bash", "run.sh", "--help"], cwd=recipe, env=ENV, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("Deep Speech 2 on AISHELL-1")
    for option in ("--base-url https://www.openslr.org/resources", '--corpus-dir ""', "--download-dir data/download",
                   "--world-size 1", "--num-jobs 8", "--avg 5", "--config conf/ds2.yaml"):
        assert option in out, option
