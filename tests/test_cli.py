import click
import numpy as np
import pytest
from click.testing import CliRunner
from lhotse import CutSet

from ds2.cli import main


def all_commands(group: click.Group = main, path: tuple[str, ...] = ()):
    """Every command of the `ds2` group, sub-groups and their commands included, with its words."""
    for name, cmd in sorted(group.commands.items()):
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, path + (name,))


COMMANDS = dict(all_commands())


def _corpora() -> set[str]:
    """`prepare <name>` of every ds2/corpora/<name>.py with a `prepare_<name>` (Lhotse's shape)."""
    import importlib
    import pkgutil

    import ds2.corpora

    return {f"prepare {m.name}" for m in pkgutil.iter_modules(ds2.corpora.__path__)
            if hasattr(importlib.import_module(f"ds2.corpora.{m.name}"), f"prepare_{m.name}")}


def test_every_verb_is_registered():
    corpora = _corpora()
    assert {"prepare synth", "prepare aishell", "prepare librispeech", "prepare musan", "prepare mydata"} <= corpora
    expected = {"prepare", *corpora, "prepare librispeech-lm", "features", "shar", "tokens", "lm", "lm train",
                "lm import", "lm graph", "train", "average", "decode", "tune", "results", "export", "transcribe",
                "serve"}
    assert {" ".join(words) for words in COMMANDS} == expected
    out = CliRunner().invoke(main, ["--help"])
    assert out.exit_code == 0
    for words in COMMANDS:
        assert words[0] in out.output


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_every_verb_documents_each_option_and_argument(words):
    """--help works, says what the verb does with an example, and documents every option
    (a help text shown in the output) and every argument (named in the description)."""
    cmd = COMMANDS[words]
    out = CliRunner().invoke(main, list(words) + ["--help"])
    assert out.exit_code == 0, out.output
    assert "Usage:" in out.output and (cmd.help or "").strip()
    if not isinstance(cmd, click.Group):
        assert "Example" in cmd.help, f"ds2 {' '.join(words)} --help gives no example"
    for param in cmd.params:
        if isinstance(param, click.Argument):
            assert param.human_readable_name in cmd.help, f"argument {param.human_readable_name} is not described"
        elif not param.hidden:
            assert param.help and param.help.strip(), f"option {param.opts[0]} has no help text"
            assert param.opts[-1] in out.output


def test_shar_round_trip_keeps_cuts_and_features(tiny_corpus, tmp_path):
    cuts_file = tiny_corpus / "fbank" / "synth_cuts_dev.jsonl.gz"
    out = CliRunner().invoke(main, ["shar", str(cuts_file), str(tmp_path / "shar"), "--shard-size", "3"])
    assert out.exit_code == 0, out.output
    cuts = CutSet.from_file(cuts_file).to_eager()
    n = -(-len(cuts) // 3)
    assert f"{n} shards in" in out.output and len(list((tmp_path / "shar").glob("features.*.tar"))) == n
    back = CutSet.from_shar(in_dir=tmp_path / "shar").to_eager()
    assert sorted(back.ids) == sorted(cuts.ids)
    for cut in back:  # lilcom is lossy: the same features within its precision
        assert np.allclose(cut.load_features(), cuts[cut.id].load_features(), atol=0.05)


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
