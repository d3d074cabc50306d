"""egs/librispeech and egs/mini_librispeech from download to RESULTS.md, on miniatures of LibriSpeech,
mini-LibriSpeech and its LM resources served from 127.0.0.1.

tests/librispeech_fixture.py writes the archives as OpenSLR lays them out (`12/<part>.tar.gz`,
`31/<part>.tar.gz`, `11/librispeech-lm-norm.txt.gz`, `11/3-gram.pruned.1e-7.arpa.gz`,
`11/4-gram.arpa.gz`: upper-case transcripts and LMs); a local HTTP server serves them as the
`--base-url`, and the recipes run every stage on them with a tiny model:
- egs/librispeech with char-en tokens and the official LMs, every decoding method on dev-clean,
  dev-other, test-clean and test-other;
- the same recipe folder again with BPE tokens (`--stage 3 --token-type bpe --tag ds2_bpe`: the
  download, features and LMs are the char-en run's), every method;
- egs/mini_librispeech (train-clean-5, dev-clean-2 from `31/`) with greedy and HLG decoding only: its
  other stages are the shared ones the two runs above take through every method, and the time
  budget of the suite left no room for the other three;
- egs/librispeech with `--lm-source corpus` in a folder of its own that starts from the char-en
  run's manifests and stage markers: stage 1 fetches and normalises the LM corpus, stage 4 trains
  pruned n-grams on it.
The runs go side by side (the char-en and BPE runs share their folder from stage 3 on; each stops at
stage 8 and one stage 9 writes RESULTS.md after both): each `ds2` step is mostly Python start-up, so
on two cores this nearly halves their wall time. One epoch count, no averaging (`--avg 1`: tested by
the other recipes' tests), one decoding process.

The fast tests check the one-line errors of `ds2 prepare librispeech` and `librispeech-lm` (a copy
on disk without a chapter's transcript, 404, no connection), `ds2 lm import` (case, order) and the
streaming normalisation of the LM corpus, in-process.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from librispeech_fixture import LM_SENTENCES, UTTERANCES, estimate_arpa, make_archives, write_corpus
from recipe_fixture import edit_distance
from local_http import serving

from ds2.cli import main
from ds2.text import normalize_english

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(REPO),
           OMP_NUM_THREADS="1")  # several runs side by side on two cores: one thread each, no oversubscription
OVERRIDES = ("train.epochs=2 train.threads=1 train.max_duration=30 train.lr=1e-2 train.warmup_steps=5 "
             "train.num_workers=0 "
             "train.spec_augment=false train.save_every_steps=0 model.rnn_layers=1 model.rnn_hidden=32 "
             "model.conv_channels=[4] model.conv_kernels=[[11,21]] model.conv_strides=[[3,4]]")
SETS = ("dev-clean", "dev-other", "test-clean", "test-other")
METHODS = ("greedy", "ctc-graph", "beam", "hlg", "nbest-rescore")
MINI_METHODS = ("greedy", "hlg")
BPE_VOCAB = 40
PIECE_MARKS = ("\u2581", "\u2047", "<unk>", "<blk>")  # ▁, sentencepiece's ⁇ for <unk>, the special pieces


def ds2(*args) -> tuple[int, str]:
    """Run `ds2 ARGS` in-process: (exit code, its last output line)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = (result.stdout + result.stderr).strip().splitlines()
    return result.exit_code, lines[-1] if lines else ""


# -- fast: the one-line errors, the ARPA import, the LM corpus -----------------------------------


def test_a_copy_on_disk_is_prepared_and_one_without_a_transcript_fails_naming_it(tmp_path):
    copy = write_corpus(tmp_path / "copy", ["dev-clean"])
    code, _ = ds2("prepare", "librispeech", tmp_path / "out", "--corpus-dir", copy / "LibriSpeech", "--parts",
                  "dev-clean")  # the LibriSpeech folder itself is fine too
    assert code == 0
    from lhotse import SupervisionSet

    sups = SupervisionSet.from_file(tmp_path / "out" / "librispeech_supervisions_dev-clean.jsonl.gz")
    assert {s.id: s.text for s in sups} == {
        "1272-128104-0000": "the old man looked at the door", "1272-128104-0001": "she talked to her father",
        "1272-128104-0002": "the children walked home"}

    (copy / "LibriSpeech" / "dev-clean" / "1272" / "128104" / "1272-128104.trans.txt").unlink()
    code, line = ds2("prepare", "librispeech", tmp_path / "out2", "--corpus-dir", copy, "--parts",
                     "dev-clean,test-clean")
    assert code == 1
    assert line == (f"Error: {copy} is not a copy of LibriSpeech with dev-clean, test-clean: missing "
                    "LibriSpeech/dev-clean/1272/128104/1272-128104.trans.txt, LibriSpeech/test-clean")
    assert not (tmp_path / "out2").exists()
    (copy / "test-clean.tar.gz").write_bytes(b"")  # downloaded, not untarred
    code, line = ds2("prepare", "librispeech", tmp_path / "out2", "--corpus-dir", copy, "--parts", "test-clean")
    assert (code, line) == (1, f"Error: {copy} is not a copy of LibriSpeech with test-clean: missing "
                               f"LibriSpeech/test-clean ({copy} holds test-clean.tar.gz: untar it there first)")
    code, line = ds2("prepare", "librispeech", tmp_path / "out3", "--corpus-dir", copy, "--parts", "dev-clean,test")
    assert (code, line) == (1, "Error: unknown part test: the parts are train-clean-100, train-clean-360, "
                               "train-other-500, dev-clean, dev-other, test-clean, test-other (LibriSpeech) and "
                               "train-clean-5, dev-clean-2 (mini-LibriSpeech)")


def test_downloads_that_get_404_or_no_connection_fail_naming_the_url(tmp_path, http_root):
    _, base_url = http_root  # serves an empty folder
    code, line = ds2("prepare", "librispeech", tmp_path / "data" / "manifests", "--parts", "train-clean-5,dev-clean-2",
                     "--base-url", base_url)
    assert (code, line) == (1, f"Error: cannot download {base_url}/31/train-clean-5.tar.gz: HTTP 404 File not found")
    assert not list((tmp_path / "data" / "download").glob("*.tar.gz"))  # no empty archive left to "resume"
    code, line = ds2("prepare", "librispeech-lm", tmp_path / "data" / "manifests", "--arpa", "4-gram.arpa.gz",
                     "--base-url", base_url)
    assert (code, line) == (1, f"Error: cannot download {base_url}/11/4-gram.arpa.gz: HTTP 404 File not found")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/resources"
        code, line = ds2("prepare", "librispeech-lm", tmp_path / "data" / "manifests", "--text", "--base-url", refused)
    assert code == 1
    assert line.startswith(f"Error: cannot download {refused}/11/librispeech-lm-norm.txt.gz: ") and "refused" in line


def test_an_upper_case_arpa_is_imported_lower_cased_for_lower_case_tokens(tmp_path, lang):
    """LibriSpeech's official ARPAs are upper-case: imported for char-en tokens, every word is
    lower-cased and every probability kept; the order is checked; words that differ only in case refuse."""
    import kenlm

    from ds2.lm.ngram import arpa_vocabulary

    upper = tmp_path / "3-gram.arpa.gz"
    upper.write_bytes(gzip.compress(estimate_arpa(3, "".join(s + "\n" for s in LM_SENTENCES if s.isascii()))))
    code, _ = ds2("lm", "import", upper, tmp_path / "lm", "--order", "3", "--lang-dir", lang)
    assert code == 0
    original = gzip.decompress(upper.read_bytes()).decode()
    (tmp_path / "upper.arpa").write_text(original)
    assert arpa_vocabulary(tmp_path / "lm" / "lm_3gram.arpa") == [
        w.lower() for w in arpa_vocabulary(tmp_path / "upper.arpa")]
    big, small = kenlm.Model(str(tmp_path / "upper.arpa")), kenlm.Model(str(tmp_path / "lm" / "lm_3gram.bin"))
    for sentence in ("THE OLD MAN SAT BY THE FIRE", "SHE SANG A SONG TO THE KING", "HE DIDN'T SAY A WORD"):
        assert small.score(sentence.lower()) == pytest.approx(big.score(sentence), abs=1e-4)
    # kept as it is for tokens that spell it so (every character of the upper-case text)
    (tmp_path / "upper.txt").write_text("".join(s + "\n" for s in LM_SENTENCES if s.isascii()))
    assert ds2("tokens", tmp_path / "lang_upper", "--type", "char", "--text", tmp_path / "upper.txt")[0] == 0
    assert ds2("lm", "import", upper, tmp_path / "lm_kept", "--order", "3", "--lang-dir",
               tmp_path / "lang_upper")[0] == 0
    assert arpa_vocabulary(tmp_path / "lm_kept" / "lm_3gram.arpa") == arpa_vocabulary(tmp_path / "upper.arpa")

    assert ds2("lm", "import", upper, tmp_path / "lm4", "--order", "4") == (
        1, f"Error: {upper} is a 3-gram LM, not a 4-gram: give it as the LM of order 3")
    n1 = int(re.search(r"ngram 1=(\d+)", original).group(1))
    both = original.replace(f"ngram 1={n1}", f"ngram 1={n1 + 1}", 1).replace(
        "\\1-grams:\n", "\\1-grams:\n-3.0\tthe\t0\n", 1)  # "the" beside "THE"
    (tmp_path / "both.arpa").write_text(both)
    code, line = ds2("lm", "import", tmp_path / "both.arpa", tmp_path / "lm_both", "--order", "3", "--case", "lower")
    assert (code, line) == (1, f"Error: {tmp_path / 'both.arpa'} holds words that differ only in case (e.g. 'the' "
                               "twice once lower-cased): it cannot be lower-cased")
    assert not (tmp_path / "lm_both" / "lm_3gram.arpa").exists()


def test_the_lm_corpus_is_normalised_streaming_in_order(tmp_path):
    from ds2.corpora.librispeech import normalize_lm_text

    src = tmp_path / "librispeech-lm-norm.txt.gz"
    lines = [s for _ in range(7) for s in LM_SENTENCES]  # 266 lines: many chunks of 10
    src.write_bytes(gzip.compress("".join(s + "\n" for s in lines).encode()))
    expected = [normalize_english(s) for s in lines if normalize_english(s)]
    assert len(expected) == len(lines) - 7 and "he didn't say a word" in expected  # the é line, dropped 7 times
    for jobs in (1, 2):
        dst = tmp_path / f"out{jobs}.txt.gz"
        assert normalize_lm_text(src, dst, num_jobs=jobs, chunk_lines=10) == (len(expected), 7)
        assert gzip.decompress(dst.read_bytes()).decode().splitlines() == expected


# -- slow: the recipes ---------------------------------------------------------------------------


def _copy_recipe(root: Path, name: str) -> Path:
    (root / "egs").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "egs" / "asr.sh", root / "egs" / "asr.sh")
    shutil.copy(REPO / "egs" / "path.sh", root / "egs" / "path.sh")
    shutil.copytree(REPO / "egs" / name, root / "egs" / name,
                    ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md"))
    if not (root / "utils").exists():
        (root / "utils").symlink_to(REPO / "utils")
    return root / "egs" / name


def _run(recipe: Path, log: str, *args) -> str:
    """Run `run.sh ARGS` in `recipe`; its stderr (also kept in `recipe/LOG`). Raises if it fails."""
    with open(recipe / log, "w") as err:
        proc = subprocess.run(["bash", "run.sh", *map(str, args)], cwd=recipe, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=err, timeout=600)
    text = (recipe / log).read_text()
    if proc.returncode != 0:
        raise AssertionError(f"{recipe.name}/run.sh {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{text[-4000:]}")
    return text


@pytest.fixture(scope="module")
def recipes(tmp_path_factory) -> dict[str, Path | str]:
    """Every run of the module docstring, side by side; their folders and logs."""
    www = tmp_path_factory.mktemp("www")
    make_archives(www)
    root = tmp_path_factory.mktemp("repo")
    libri, mini = _copy_recipe(root, "librispeech"), _copy_recipe(root, "mini_librispeech")
    corpus_lm = _copy_recipe(tmp_path_factory.mktemp("repo_corpus_lm"), "librispeech")
    with serving(www) as url, ThreadPoolExecutor(3) as ex:
        common = ("--base-url", url, "--num-jobs", "1", "--decode-jobs", "1", "--avg", "1", "--overrides", OVERRIDES)
        mini_run = ex.submit(_run, mini, "run.log", *common, "--methods", " ".join(MINI_METHODS))
        stage1_log = _run(libri, "char_1-4.log", *common, "--stop-stage", "4")
        bpe = ex.submit(_run, libri, "bpe_3-8.log", *common, "--stage", "3", "--stop-stage", "8",
                        "--token-type", "bpe", "--vocab-size", BPE_VOCAB, "--tag", "ds2_bpe")
        # --lm-source corpus in a folder of its own, from the corpus the char-en run prepared: its
        # manifests and the markers of stages 1-3, so that stage 1 fetches the LM corpus and stage 4
        # trains on it, and nothing else runs
        shutil.copytree(libri / "data" / "manifests", corpus_lm / "data" / "manifests")
        (corpus_lm / "data" / ".done").mkdir()
        for marker in (libri / "data" / ".done").glob("stage[123].*"):
            if not marker.name.startswith("stage1.lm."):
                shutil.copy(marker, corpus_lm / "data" / ".done" / marker.name)
        corpus = ex.submit(_run, corpus_lm, "run.log", *common, "--lm-source", "corpus", "--stop-stage", "4")
        _run(libri, "char_5-8.log", *common, "--stage", "5", "--stop-stage", "8")
        bpe.result()
        _run(libri, "results.log", *common, "--stage", "9")
        mini_log, corpus_log = mini_run.result(), corpus.result()
    return {"librispeech": libri, "mini": mini, "corpus_lm": corpus_lm, "stage1_log": stage1_log, "mini_log": mini_log,
            "corpus_log": corpus_log, "www": www}


def _texts(recipe: Path, part: str) -> dict[str, str]:
    from lhotse import SupervisionSet

    return {s.id: s.text for s in SupervisionSet.from_file(
        recipe / "data" / "manifests" / f"librispeech_supervisions_{part}.jsonl.gz")}


@pytest.mark.slow
def test_the_download_is_prepared_into_normalised_manifests(recipes):
    from lhotse import RecordingSet

    for recipe, parts in ((recipes["librispeech"], SETS + ("train-clean-100", "train-clean-360", "train-other-500")),
                          (recipes["mini"], ("train-clean-5", "dev-clean-2"))):
        for part in parts:
            texts = _texts(recipe, part)
            expected = {u.id: normalize_english(u.text) for u in UTTERANCES
                        if u.part == part and u.flac and u.transcript and normalize_english(u.text)}
            assert texts == expected, part
            recordings = RecordingSet.from_file(
                recipe / "data" / "manifests" / f"librispeech_recordings_{part}.jsonl.gz")
            assert sorted(r.id for r in recordings) == sorted(texts)
            assert all(re.fullmatch(r"[a-z' ]+", t) for t in texts.values())
            # the untarred download the manifests point at
            assert (recipe / "data" / "download" / "LibriSpeech" / part / ".completed").is_file()
    # BOYS': an apostrophe at a word edge goes, one inside a word stays
    assert _texts(recipes["librispeech"], "train-other-500")["20-205-0003"] == "the boys books lay open on the table"
    assert "i don't think he will come back today" in _texts(recipes["librispeech"], "train-clean-360").values()
    log = recipes["stage1_log"]
    assert re.search(r"librispeech train-clean-100: 8 utterances, .*left out: 1 FLACs without a transcript line, "
                     r"1 transcript lines without a FLAC \(26-495-0091\), 0 transcripts that cannot be spelled", log)
    assert re.search(r"librispeech train-other-500: 4 utterances, .*0 transcript lines without a FLAC, 1 "
                     r"transcripts that cannot be spelled with the 28 characters, e\.g\. 20-205-0016 'A NAÏVE", log)


@pytest.mark.slow
def test_the_official_arpas_are_imported_lower_cased(recipes):
    from ds2.lm.ngram import arpa_vocabulary

    recipe = recipes["librispeech"]
    for order, name in ((3, "3-gram.pruned.1e-7.arpa.gz"), (4, "4-gram.arpa.gz")):
        official = recipe / "data" / "download" / "lm" / name
        assert official.read_bytes() == (recipes["www"] / "11" / name).read_bytes()
        plain = recipe / f"official_{order}.arpa"
        plain.write_bytes(gzip.decompress(official.read_bytes()))
        assert arpa_vocabulary(recipe / "data" / "lm" / f"lm_{order}gram.arpa") == [
            w.lower() for w in arpa_vocabulary(plain)]
        assert (recipe / "data" / "lm" / f"lm_{order}gram.bin").is_file()
    # L spells the LM's (lower-case) words: HLG decodes words of the official LM
    words = {line.split()[0] for line in (recipe / "data" / "lang_char" / "words.txt").read_text().splitlines()}
    assert {"the", "didn't", "king"} <= words and "THE" not in words


@pytest.mark.slow
def test_lm_source_corpus_trains_pruned_ngrams_on_the_normalised_lm_corpus(recipes):
    recipe, log = recipes["corpus_lm"], recipes["corpus_log"]
    assert "skipping: data/.done/stage1.prepare." in log and "running: ds2 prepare librispeech-lm data/manifests " \
        "--text" in log and "running: ds2 features" not in log
    for order in (3, 4):
        assert re.search(rf"running: ds2 lm train data/manifests/librispeech_lm_text.txt.gz data/lm --order {order} "
                         r".*--prune 0 1 2", log), log
    text = recipe / "data" / "manifests" / "librispeech_lm_text.txt.gz"
    assert gzip.decompress(text.read_bytes()).decode().splitlines() == [
        normalize_english(s) for s in LM_SENTENCES if normalize_english(s)]
    assert not (recipe / "data" / "download" / "lm" / "4-gram.arpa.gz").exists()  # not the official LMs
    from ds2.lm.ngram import arpa_counts, kenlm_tool

    for order in (3, 4):
        arpa = recipe / "data" / "lm" / f"lm_{order}gram.arpa"
        # the same text unpruned: lm_prune "0 1 2" drops bigrams seen once, higher n-grams seen twice or less
        full = recipe / f"full_{order}.arpa"
        subprocess.run([str(kenlm_tool("lmplz")), "-o", str(order), "-S", "5%", "-T", str(recipe), "--text",
                        str(text), "--arpa", str(full), "--discount_fallback"], check=True, capture_output=True)
        pruned, unpruned = arpa_counts(arpa), arpa_counts(full)
        assert pruned[1] == unpruned[1], (pruned, unpruned)
        assert all(pruned[n] < unpruned[n] for n in range(2, order + 1)), (pruned, unpruned)


def _recogs(out: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    refs, hyps = {}, {}
    for line in (out / "recogs.txt").read_text(encoding="utf-8").splitlines():
        uid, field = line.split(":\t")
        kind, words = field.split("=", 1)
        (refs if kind == "ref" else hyps)[uid] = ast.literal_eval(words)
    return refs, hyps


def _experiments(recipes):
    """(recipe, tag, sets, methods) of every trained model."""
    return [(recipes["librispeech"], "ds2", SETS, METHODS), (recipes["librispeech"], "ds2_bpe", SETS, METHODS),
            (recipes["mini"], "ds2", ("dev-clean-2",), MINI_METHODS)]


@pytest.mark.slow
def test_results_have_a_wer_row_per_set_and_method(recipes):
    for recipe, tag, sets, methods in _experiments(recipes):
        results = (recipe / "RESULTS.md").read_text()
        header = next(line for line in results.splitlines() if line.startswith("| experiment | method |"))
        assert header == "| experiment | method | " + " | ".join(f"{s} %WER | {s} %CER" for s in sets) + " |"
        for method in methods:
            row = next(line for line in results.splitlines() if line.startswith(f"| {tag} | {method} |"))
            cells = [c.strip() for c in row.strip("|").split("|")][2:]
            assert len(cells) == 2 * len(sets) and all(re.fullmatch(r"\d+\.\d\d", c) for c in cells), row
            for s in sets:
                wer_txt = (recipe / "exp" / tag / f"decode_{s}_{method}" / "wer.txt").read_text()
                wer_line = next(line for line in wer_txt.splitlines() if line.startswith("%WER"))
                assert f"| {tag} | {method} | {s} | {wer_line} |" in results
        # no other method was run
        assert {line.split("|")[2].strip() for line in results.splitlines() if line.startswith(f"| {tag} |")} \
            == set(methods)


@pytest.mark.slow
def test_wer_is_the_word_edit_distance_of_the_recogs(recipes):
    """Each decoding's %WER (wer.txt, result.json) is recomputed here from recogs.txt, whose
    references must be the normalised manifest texts of the set, every utterance once."""
    for recipe, tag, sets, methods in _experiments(recipes):
        for s in sets:
            texts = _texts(recipe, s)
            for method in methods:
                out = recipe / "exp" / tag / f"decode_{s}_{method}"
                refs, hyps = _recogs(out)
                assert sorted(" ".join(r) for r in refs.values()) == sorted(texts.values())
                assert set(hyps) == set(refs)
                errors = sum(edit_distance(refs[u], hyps[u]) for u in refs)
                ref_words = sum(len(r) for r in refs.values())
                result = json.loads((out / "result.json").read_text())
                assert result["primary"] == "WER"
                assert (result["WER"]["errors"], result["WER"]["ref"]) == (errors, ref_words), (tag, s, method)
                assert result["WER"]["rate"] == pytest.approx(100 * errors / ref_words, abs=1e-4)
                wer_line = next(line for line in (out / "wer.txt").read_text().splitlines() if line.startswith("%WER"))
                assert wer_line.startswith(f"%WER {100 * errors / ref_words:.2f} [ {errors} / {ref_words},"), wer_line


@pytest.mark.slow
def test_bpe_decodings_give_words_not_pieces(recipes):
    from ds2.checkpoint import load_checkpoint
    from ds2.text import load_tokenizer

    recipe = recipes["librispeech"]
    lang = recipe / "data" / f"lang_bpe_{BPE_VOCAB}"
    tokenizer = load_tokenizer(lang)
    assert tokenizer.to_dict()["type"] == "bpe" and tokenizer.vocab_size == BPE_VOCAB
    assert load_checkpoint(recipe / "exp" / "ds2_bpe" / "checkpoints" / "last.pt")["tokenizer"] == tokenizer.to_dict()
    lm_words = {line.split()[0] for line in (lang / "words.txt").read_text().splitlines()}
    for method in METHODS:
        hyps = [w for s in SETS for words in _recogs(recipe / "exp" / "ds2_bpe" / f"decode_{s}_{method}")[1].values()
                for w in words]
        assert hyps, method
        assert not [w for w in hyps if any(mark in w for mark in PIECE_MARKS)], (method, hyps)
        if method == "hlg":  # the graph's output is the LM's words
            assert set(hyps) <= lm_words, set(hyps) - lm_words


@pytest.mark.slow
def test_help_lists_the_recipe_and_the_shared_options(recipes):
    for recipe, start, options in (
            (recipes["librispeech"], "Deep Speech 2 on LibriSpeech (OpenSLR 12)",
             ("--base-url https://www.openslr.org/resources", '--corpus-dir ""', "--lm-source official",
              '--lm-prune "0 1 2"', '--train-sets "train-clean-100 train-clean-360 train-other-500"',
              "--dev-set dev-clean", '--test-sets "dev-other test-clean test-other"', "--token-type char-en",
              "--num-jobs 8", "--avg 5", "--world-size 1", "--vocab-size 500", "--config conf/ds2.yaml")),
            (recipes["mini"], "Deep Speech 2 on mini-LibriSpeech (OpenSLR 31)",
             ('--test-sets ""', "--dev-set dev-clean-2", "--num-jobs 2", "--avg 3", "--config conf/ds2.yaml"))):
        out = subprocess.run(["bash", "run.sh", "--help"], cwd=recipe, env=ENV, capture_output=True, text=True,
                             check=True).stdout
        assert out.startswith(start)
        for option in options:
            assert option in out, option
    bad = subprocess.run(["bash", "run.sh", "--lm-source", "mine", "--stage", "4", "--stop-stage", "4"],
                         cwd=recipes["corpus_lm"], env=ENV, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == \
        "run.sh: --lm-source is official or corpus, not 'mine'"
