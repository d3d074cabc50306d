"""Bad options and bad files given to the CLI verbs around training: each is one line naming the
problem and the fix, exit status non-zero, nothing written (the real `ds2` command, as a user
runs it)."""

from __future__ import annotations

from pathlib import Path

from lhotse import CutSet
from lhotse.utils import fastcopy

from test_bad_input_data import assert_one_line_error, ds2
from test_train_scale import train_args, write_config

TEXT = "the cat sat on the mat\na dog ran in the park\nthe sun is hot today\n"


def test_features_with_too_few_mel_bins_is_a_usage_error(tiny_corpus, tmp_path):
    out = ds2("features", tiny_corpus / "manifests", tmp_path / "fbank", "--prefix", "synth", "--splits", "test",
              "--num-mel-bins", "0", ok=False)
    assert_one_line_error(out, "--num-mel-bins", "0 is not in the range x>=4")
    assert not (tmp_path / "fbank").exists()


def test_shar_takes_only_a_cut_set_with_its_features(tiny_corpus, tmp_path):
    (tmp_path / "notes.txt").write_text("not a manifest\n")
    cases = {tmp_path / "notes.txt": "is not a Lhotse cut set",
             tiny_corpus / "manifests/synth_recordings_test.jsonl.gz": "is not a Lhotse cut set (it holds Recordings)",
             tiny_corpus / "manifests/synth_supervisions_test.jsonl.gz": "(it holds SupervisionSegments)"}
    cuts = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_test.jsonl.gz").to_eager()
    gone = CutSet.from_cuts([fastcopy(cuts[0], features=fastcopy(cuts[0].features, storage_path=str(tmp_path / "gone"))),
                             *list(cuts)[1:]])
    gone.to_file(tmp_path / "gone.jsonl.gz")
    cases[tmp_path / "gone.jsonl.gz"] = f"1 of the {len(cuts)} cuts of {tmp_path / 'gone.jsonl.gz'} have no features"
    for path, message in cases.items():
        assert_one_line_error(ds2("shar", path, tmp_path / "shar", ok=False), message, "ds2 features")
        assert not (tmp_path / "shar").exists()
    assert_one_line_error(ds2("shar", tiny_corpus / "fbank/synth_cuts_test.jsonl.gz", tmp_path / "shar",
                              "--shard-size", "0", ok=False), "--shard-size", "0 is not in the range x>=1")


def test_bpe_vocabulary_size_outside_what_the_text_allows_names_the_bound(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    for size, message in {"0": "too small", "5": "at least 20", "5000": "at most"}.items():
        out = ds2("tokens", tmp_path / "lang", "--type", "bpe", "--vocab-size", size, "--text", tmp_path / "text.txt",
                  ok=False)
        assert_one_line_error(out, f"--vocab-size {size}: a BPE vocabulary of {size} tokens", message)
        assert not (tmp_path / "lang").exists()
    bound = int(out.stderr.split("at most ")[1].split()[0])
    ds2("tokens", tmp_path / "lang", "--type", "bpe", "--vocab-size", bound, "--text", tmp_path / "text.txt")
    assert len((tmp_path / "lang/tokens.txt").read_text().splitlines()) == bound


def test_train_with_a_lang_dir_without_tokens_stops_before_anything_is_written(tiny_corpus, tmp_path):
    (tmp_path / "lang").mkdir()
    args = train_args(tiny_corpus, tmp_path / "lang", tmp_path / "exp", write_config(tmp_path / "conf.yaml"))
    assert_one_line_error(ds2(*args, ok=False), "--lang-dir", "has no tokens.txt", "ds2 tokens")
    (tmp_path / "lang/tokens.txt").write_text("<blk> 0\na 1\nb\n")
    assert_one_line_error(ds2(*args, ok=False), "tokens.txt, line 3: 'b' is not 'symbol 2'")
    assert not (tmp_path / "exp").exists()


def test_lm_order_outside_what_kenlm_estimates_is_refused_before_lmplz_runs(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    for order in (0, 1, 7):
        out = ds2("lm", "train", tmp_path / "text.txt", tmp_path / "lm", "--order", order, ok=False)
        assert_one_line_error(out, f"an n-gram order of {order} is not one KenLM estimates here: 2 to 6")
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "lm").exists()
    ds2("lm", "train", tmp_path / "text.txt", tmp_path / "lm", "--order", 6)
    assert (tmp_path / "lm/lm_6gram.bin").is_file()
