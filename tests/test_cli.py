import pytest
from click.testing import CliRunner

from ds2.cli import main

VERBS = [["prepare"], ["prepare", "synth"], ["features"], ["tokens"], ["lm"], ["lm", "train"], ["lm", "graph"],
         ["train"], ["decode"], ["tune"], ["results"]]


def test_group_help_lists_every_verb():
    out = CliRunner().invoke(main, ["--help"])
    assert out.exit_code == 0
    for verb in ("prepare", "features", "tokens", "lm", "train", "decode", "tune", "results"):
        assert verb in out.output


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_explains_itself(verb):
    out = CliRunner().invoke(main, verb + ["--help"])
    assert out.exit_code == 0, out.output
    assert "Usage:" in out.output and len(out.output) > 200


def test_bad_override_is_a_usage_error(tmp_path):
    for name in ("a.jsonl.gz", "b.jsonl.gz", "s.pt"):
        (tmp_path / name).write_text("")
    out = CliRunner().invoke(main, ["train", "--exp-dir", str(tmp_path / "exp"), "--train-cuts", str(tmp_path / "a.jsonl.gz"),
                                    "--dev-cuts", str(tmp_path / "b.jsonl.gz"), "--stats", str(tmp_path / "s.pt"),
                                    "--lang-dir", str(tmp_path), "--set", "model.no_such_option=3"])
    assert out.exit_code == 2 and "unknown option model.no_such_option" in out.output


def test_decoding_method_without_its_inputs_is_a_usage_error(tmp_path):
    out = CliRunner().invoke(main, ["decode", str(tmp_path), "--method", "beam", "--cuts", f"test={tmp_path}"])
    assert out.exit_code == 2 and "--method beam needs --lm" in out.output


def test_missing_kenlm_tools_name_the_installer(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KENLM_BIN", raising=False)
    monkeypatch.setattr("ds2.lm.ngram.REPO", tmp_path)
    (tmp_path / "text.txt").write_text("a b c\n")
    out = CliRunner().invoke(main, ["lm", "train", str(tmp_path / "text.txt"), str(tmp_path / "lm")])
    assert out.exit_code == 1 and "tools/install_kenlm.sh" in out.output
