import pytest
from click.testing import CliRunner

from ds2.cli import main

VERBS = [["prepare"], ["prepare", "synth"], ["features"], ["tokens"], ["train"], ["decode"], ["results"]]


def test_group_help_lists_every_verb():
    out = CliRunner().invoke(main, ["--help"])
    assert out.exit_code == 0
    for verb in ("prepare", "features", "tokens", "train", "decode", "results"):
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
