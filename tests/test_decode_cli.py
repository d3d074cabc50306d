"""The registry of decoding methods and the `ds2 tune` / `ds2 decode` contract the recipe relies on.

The experiment here has no trained model: its log-prob cache (EXP/logprobs/<set>.pt, keyed by
the digests of the cuts file and of checkpoints/best.pt) holds hand-made log-probs, so
`ds2 decode` and `ds2 tune` run for real (CLI, runner, registry, KenLM, OpenFst) on known input
without the acoustic model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_lm_decode import LM_TEXT, TOK, peaky, spelled

from ds2.cli import main
from ds2.decode.methods import METHODS, REGISTRY, RESOURCES, DecodeOptions, describe, method
from ds2.decode.runner import LogProbs, file_digest
from ds2.score import read_result
from ds2.lm.hlg import build_graphs
from ds2.lm.ngram import train_ngram

# The acoustics prefer a misspelling 0.9 : 0.1 in the "bad" utterances: the LM weight decides.
UTTERANCES = {
    "bad1": ("the cat sat there", peaky("the cat sat th") + [{"e": 0.1, "a": 0.9}, {"": 0.98}] + peaky("re")),
    "bad2": ("there is a cat", peaky("there is a c") + [{"a": 0.1, "u": 0.9}, {"": 0.98}] + peaky("t")),
    "clean": ("a cat is there", peaky("a cat is there")),
}
SETS = {"dev_clean": ["bad1", "bad2"], "test_clean": ["clean", "bad1"], "test-other": ["bad2"]}


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> list[str]:
    """--lm, --rescore-lm and --lang-dir, as the recipe passes them to every method."""
    d = tmp_path_factory.mktemp("resources")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n")
    arpa3, lm3 = train_ngram(d / "text.txt", d / "lm", order=3)
    _, lm4 = train_ngram(d / "text.txt", d / "lm", order=4)
    TOK.save(d / "lang")
    build_graphs(d / "lang", arpa3, TOK)
    return ["--lm", str(lm3), "--rescore-lm", str(lm4), "--lang-dir", str(d / "lang")]


def make_experiment(root: Path, sets: dict[str, list[str]] = SETS) -> tuple[Path, dict[str, Path]]:
    """root/exp/ds2, an experiment folder whose log-prob cache stands in for the model, with the
    utterances `sets` names; and the cuts file of each set."""
    exp = root / "exp" / "ds2"
    (exp / "checkpoints").mkdir(parents=True)
    ckpt = exp / "checkpoints" / "best.pt"
    ckpt.write_bytes(b"no model: the log-prob cache matches these bytes")
    cuts = {}
    for name, ids in sets.items():
        cuts[name] = root / f"cuts_{name}.jsonl.gz"
        cuts[name].write_text(name)  # only its digest is read
        lp = LogProbs(ids, [UTTERANCES[i][0] for i in ids], [1.0] * len(ids),
                      [spelled(UTTERANCES[i][1]) for i in ids], TOK, str(ckpt),
                      digests={"cuts": file_digest(cuts[name]), "checkpoint": file_digest(ckpt)})
        lp.save(exp / "logprobs" / f"{name}.pt")
    return exp, cuts


def ds2(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


# -- the registry ------------------------------------------------------------------------------
def test_every_method_declares_needs_grid_settings_and_build():
    fields = {f.name for f in dataclasses.fields(DecodeOptions)}
    assert METHODS == tuple(REGISTRY) and len(METHODS) >= 5
    for name, m in REGISTRY.items():
        assert m.name == name and "\n" not in m.description and m.description
        assert set(m.needs) <= set(RESOURCES)
        assert set(m.settings) <= fields and set(m.needs) <= set(m.settings)
        assert m.grid is None or (set(m.grid) <= set(m.settings) and all(m.grid.values()))
        assert m.first_pass is None or m.first_pass in REGISTRY
        assert callable(m.build)
    with pytest.raises(ValueError, match="unknown decoding method 'nope'"):
        method("nope")


def test_describe_shows_the_settings_of_the_method_only(resources):
    opts = DecodeOptions(method="hlg", lang_dir=resources[5], lm=resources[1], alpha=0.3, lm_scale=1.3)
    assert describe(opts) == f"lang_dir={resources[5]} graph_beam=14.0 max_active=3000 lm_scale=1.3"
    assert describe(DecodeOptions()) == ""


def test_decode_and_tune_help_list_the_methods_and_the_tuned_defaults():
    for verb in ("decode", "tune"):
        out = ds2(verb, "--help")
        assert out.exit_code == 0, out.output
        for m in REGISTRY.values():
            assert m.name in out.output and m.description in out.output
        assert "EXP_DIR/tuned/METHOD.json" in out.output
        assert "EXP_DIR/tuned/beam.json" in " ".join(out.output.split())


def test_a_missing_need_is_a_usage_error_naming_the_option(tmp_path, resources):
    exp, cuts = make_experiment(tmp_path)
    given = dict(zip(resources[::2], resources[1::2]))
    for m in REGISTRY.values():
        for need in m.needs:
            flag = "--" + need.replace("_", "-")
            rest = [x for k, v in given.items() if k != flag for x in (k, v)]
            out = ds2("decode", exp, "--method", m.name, *rest, "--cuts", f"dev_clean={cuts['dev_clean']}")
            assert out.exit_code == 2 and f"--method {m.name} needs {flag}" in out.output, out.output
            out = ds2("decode", exp, "--method", m.name, *rest, flag, tmp_path / "missing",
                      "--cuts", f"dev_clean={cuts['dev_clean']}")
            assert out.exit_code == 2 and f"{flag} {tmp_path / 'missing'} does not exist" in out.output, out.output


def test_resources_a_method_does_not_need_are_ignored(tmp_path):
    exp, cuts = make_experiment(tmp_path)
    missing = tmp_path / "not-built-yet"
    out = ds2("decode", exp, "--method", "greedy", "--lm", missing, "--rescore-lm", missing, "--lang-dir", missing,
              "--num-jobs", 1, "--cuts", f"dev_clean={cuts['dev_clean']}")
    assert out.exit_code == 0, out.output
    assert read_result(exp / "decode_dev_clean_greedy" / "result.json")["settings"] == {}


# -- tuned weights live in the experiment ------------------------------------------------------
def test_tune_writes_exp_tuned_and_decode_takes_it(tmp_path, resources, caplog):
    exp, cuts = make_experiment(tmp_path)
    dev = f"dev_clean={cuts['dev_clean']}"
    tuned = exp / "tuned"

    for name in ("greedy", "ctc-graph"):  # nothing to tune: one line, nothing written, exit 0
        out = ds2("tune", exp, "--method", name, *resources, "--cuts", dev)
        assert out.exit_code == 0 and out.output.strip() == f"ds2 tune: {name} has no weights to tune; nothing written"
    assert not tuned.exists()

    # nbest-rescore before beam is tuned: its first pass keeps the weights given, with a warning
    caplog.set_level(logging.WARNING)
    out = ds2("tune", exp, "--method", "nbest-rescore", *resources, "--cuts", dev, "--num-jobs", 1)
    assert out.exit_code == 0, out.output
    assert f"{tuned / 'beam.json'} does not exist" in caplog.text
    assert json.loads((tuned / "nbest-rescore.json").read_text())["params"]["alpha"] == 0.8  # the default

    caplog.clear()
    for name in ("beam", "hlg", "nbest-rescore"):
        out = ds2("tune", exp, "--method", name, *resources, "--cuts", dev, "--num-jobs", 1)
        assert out.exit_code == 0, out.output
        assert out.output.startswith(f"{tuned / name}.json: ")
        assert json.loads((tuned / f"{name}.json").read_text())["tuned_on"] == "dev_clean"
    assert "does not exist" not in caplog.text
    beam = json.loads((tuned / "beam.json").read_text())["params"]
    rescore = json.loads((tuned / "nbest-rescore.json").read_text())["params"]
    assert {k: rescore[k] for k in ("alpha", "beta")} == beam  # its first pass was the tuned beam search
    assert json.loads((tuned / "beam.json").read_text())["dev_wer"] == 0.0

    for name in METHODS:  # the recipe's command line: the same resources for every method
        out = ds2("decode", exp, "--method", name, *resources, "--num-jobs", 1,
                  *[x for s, p in cuts.items() for x in ("--cuts", f"{s}={p}")])
        assert out.exit_code == 0, out.output
    result = read_result(exp / "decode_test_clean_beam" / "result.json")
    assert result["weights_from"] == [str(tuned / "beam.json")]
    assert {k: result["settings"][k] for k in beam} == beam
    assert f"alpha={beam['alpha']} beta={beam['beta']}" in (exp / "decode_test_clean_beam" / "wer.txt").read_text()
    result = read_result(exp / "decode_test-other_nbest-rescore" / "result.json")
    assert result["weights_from"] == [str(tuned / "beam.json"), str(tuned / "nbest-rescore.json")]
    assert {k: result["settings"][k] for k in rescore} == rescore
    assert read_result(exp / "decode_dev_clean_hlg" / "result.json")["settings"]["lm_scale"] == \
        json.loads((tuned / "hlg.json").read_text())["params"]["lm_scale"]
    assert read_result(exp / "decode_dev_clean_greedy" / "result.json")["weights_from"] == []


def test_params_replaces_the_tuned_file_and_options_given_win(tmp_path, resources):
    exp, cuts = make_experiment(tmp_path)
    test = f"test_clean={cuts['test_clean']}"
    (exp / "tuned").mkdir()
    (exp / "tuned" / "beam.json").write_text(json.dumps({"method": "beam", "params": {"alpha": 0.3, "beta": 2.0}}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"method": "beam", "params": {"alpha": 1.0, "beta": 4.0}}))

    def settings(*args):
        out = ds2("decode", exp, "--method", "beam", *resources, "--num-jobs", 1, "--cuts", test, *args)
        assert out.exit_code == 0, out.output
        result = read_result(exp / "decode_test_clean_beam" / "result.json")
        return result["settings"]["alpha"], result["settings"]["beta"], result["weights_from"]

    assert settings() == (0.3, 2.0, [str(exp / "tuned" / "beam.json")])
    assert settings("--params", other) == (1.0, 4.0, [str(other)])
    assert settings("--alpha", 0.6) == (0.6, 2.0, [str(exp / "tuned" / "beam.json")])

    hlg = tmp_path / "hlg.json"
    hlg.write_text(json.dumps({"method": "hlg", "params": {"lm_scale": 1.0}}))
    out = ds2("decode", exp, "--method", "beam", *resources, "--params", hlg, "--cuts", test)
    assert out.exit_code == 2 and "was tuned for hlg, not beam" in out.output


# -- --name: one method decoded with other resources beside its plain decoding -------------------
def test_name_keeps_a_method_with_other_resources_apart(tmp_path, resources):
    exp, cuts = make_experiment(tmp_path)
    dev, test = f"dev_clean={cuts['dev_clean']}", f"test_clean={cuts['test_clean']}"
    tuned = exp / "tuned"
    # a second lang dir: the graph of a 2-gram (as the recipe's data/lang_word beside data/lang_char)
    other = tmp_path / "other"
    (other / "text.txt").parent.mkdir()
    (other / "text.txt").write_text("\n".join(LM_TEXT) + "\n")
    arpa2, _ = train_ngram(other / "text.txt", other / "lm", order=2)
    TOK.save(other / "lang")
    build_graphs(other / "lang", arpa2, TOK)
    named = [*resources[:4], "--lang-dir", other / "lang", "--method", "hlg", "--name", "hlg-x"]

    out = ds2("tune", exp, *named, "--cuts", dev, "--num-jobs", 1)
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"{tuned / 'hlg-x.json'}: ")
    tuned_x = json.loads((tuned / "hlg-x.json").read_text())
    assert tuned_x["method"] == "hlg" and tuned_x["tuned_on"] == "dev_clean" and "lm_scale" in tuned_x["params"]
    assert sorted(p.name for p in tuned.iterdir()) == ["hlg-x.json"]  # neither hlg.json nor dev_clean.json
    out = ds2("tune", exp, "--method", "hlg", *resources, "--cuts", dev, "--num-jobs", 1)
    assert out.exit_code == 0 and out.output.startswith(f"{tuned / 'hlg'}.json: "), out.output
    # weights each decoding must take from its own file: set apart by hand
    for name, scale in (("hlg", 0.7), ("hlg-x", 1.3)):
        record = json.loads((tuned / f"{name}.json").read_text())
        record["params"]["lm_scale"] = scale
        (tuned / f"{name}.json").write_text(json.dumps(record))

    for args in (named, ["--method", "hlg", *resources]):
        out = ds2("decode", exp, *args, "--num-jobs", 1, "--cuts", dev, "--cuts", test)
        assert out.exit_code == 0, out.output
    for s in ("dev_clean", "test_clean"):
        x, plain = (read_result(exp / f"decode_{s}_{n}" / "result.json") for n in ("hlg-x", "hlg"))
        assert (x["name"], x["method"], plain["name"], plain["method"]) == ("hlg-x", "hlg", "hlg", "hlg")
        assert x["weights_from"] == [str(tuned / "hlg-x.json")] and x["settings"]["lm_scale"] == 1.3
        assert x["settings"]["lang_dir"] == str(other / "lang")
        assert plain["weights_from"] == [str(tuned / "hlg.json")] and plain["settings"]["lm_scale"] == 0.7
        assert (exp / f"decode_{s}_hlg-x" / "wer.txt").read_text().startswith(f"# {s} hlg-x ")
    assert sorted(p.name for p in exp.glob("decode_*")) == [
        "decode_dev_clean_hlg", "decode_dev_clean_hlg-x", "decode_test_clean_hlg", "decode_test_clean_hlg-x"]

    out = ds2("results", tmp_path)
    assert out.exit_code == 0, out.output
    rows = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if line.startswith("| ds2 | hlg")]
    assert [r.split("|")[2].strip() for r in rows[:2]] == ["hlg", "hlg-x"]  # a row of its own, beside hlg
    assert any(r.startswith("| ds2 | hlg-x | test_clean | ") and "lm_scale=1.3" in r for r in rows)


@pytest.mark.parametrize("verb", ["decode", "tune"])
@pytest.mark.parametrize("name", ["../x", "a/b", "-x", ".hidden", "x y", ""])
def test_a_name_that_is_no_plain_file_name_is_a_one_line_usage_error(tmp_path, resources, verb, name):
    exp, cuts = make_experiment(tmp_path, {"dev_clean": ["bad1"]})
    proc = subprocess.run([str(Path(sys.executable).with_name("ds2")), verb, str(exp), "--method", "hlg", *resources,
                           f"--name={name}", "--cuts", f"dev_clean={cuts['dev_clean']}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: --name {name!r} must be letters, digits, '.', '_' and '-' (it names a folder)"]
    assert not list(exp.glob("decode_*")) and not (exp / "tuned").exists() and not (exp.parent / "x").exists()
