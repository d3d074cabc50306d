"""RESULTS.md (`ds2 results`): set and method come from each decoding's result.json, so set
names with `_` and `-` and method names with `-` land in the right row and column.

The decoding folders are written by the real runner (`decode_cuts`) on hand-made log-probs
kept in the experiment's log-prob cache (see tests/test_decode_cli.py).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_decode_cli import make_experiment
from test_lm_decode import LM_TEXT

from ds2.cli import main
from ds2.decode.methods import DecodeOptions
from ds2.decode.runner import LogProbs, decode_cuts, decode_dir, decode_log_probs, write_result
from ds2.lm.ngram import train_ngram
from ds2.report import cpu_description, set_order, write_results

SETS = {"test-other": ["bad2", "clean", "bad1"], "dev_clean": ["bad1", "bad2"], "test_clean": ["clean", "bad1"],
        "dev-other": ["bad2"]}


@pytest.fixture(scope="module")
def lm_bin(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n")
    return str(train_ngram(d / "text.txt", d / "lm", order=3)[1])


@pytest.fixture
def decoded(tmp_path, lm_bin):
    """(recipe folder, exp folder, {(set, method): (%WER, %CER)}) after decoding every set with
    greedy, beam (weak LM weight) and nbest-rescore."""
    exp, cuts = make_experiment(tmp_path, SETS)
    methods = [DecodeOptions(), DecodeOptions(method="beam", lm=lm_bin, alpha=0.05, beta=0.0),
               DecodeOptions(method="nbest-rescore", lm=lm_bin, rescore_lm=lm_bin, rescore_alpha=1.0)]
    rates = {}
    for opts in methods:
        for name, path in cuts.items():
            wer, cer, out_dir = decode_cuts(exp, path, name, opts)
            assert out_dir == exp / f"decode_{name}_{opts.method}"
            rates[(name, opts.method)] = (wer, cer)
    return tmp_path, exp, rates


def table_rows(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header cells and the cells of each method's row of the first table of RESULTS.md."""
    lines = [ln for ln in text.split("## Word and character error rates", 1)[1].splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0] == "experiment":  # the next table
            break
        rows[cells[1]] = cells
    return header, rows


def test_every_set_and_method_lands_in_its_own_cell(decoded):
    recipe, exp, rates = decoded
    text = write_results(recipe)
    header, rows = table_rows(text)
    sets = ["dev-other", "dev_clean", "test-other", "test_clean"]  # dev sets first
    assert header == ["experiment", "method"] + [f"{s} %{u}" for s in sets for u in ("WER", "CER")]
    assert list(rows) == ["greedy", "beam", "nbest-rescore"]  # the registry's order
    for (name, method), (wer, cer) in rates.items():
        column = header.index(f"{name} %WER")
        assert rows[method][column:column + 2] == [f"{wer.rate:.2f}", f"{cer.rate:.2f}"], (name, method)
        assert f"| ds2 | {method} | {name} | {wer.line('WER')} | {cer.line('CER')} |" in text
    # the numbers differ from set to set, so a set read from the wrong folder would show
    assert len({rates[(s, "greedy")][1].rate for s in sets}) == len(sets)
    assert "| ds2 | nbest-rescore | test_clean | " in text  # its settings, from the last set
    assert "`rescore_alpha=1.0`" in text and "`alpha=0.05`" in text
    assert CliRunner().invoke(main, ["results", str(recipe)]).exit_code == 0
    assert (recipe / "RESULTS.md").read_text().split("## Environment")[0] == text.split("## Environment")[0]
    # the CPU is named, with whether it computes bfloat16 natively (the figures depend on it)
    machine = next(line for line in text.splitlines() if line.startswith("- machine: "))
    cpu = cpu_description()
    assert machine.startswith(f"- machine: {cpu}, "), machine
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert cpu.split(" (")[0] in cpuinfo
    assert ("AVX-512-BF16" in cpu) == ("avx512_bf16" in cpuinfo.split()), cpu


def test_a_decoding_folder_without_result_json_is_left_out_with_a_warning(decoded, caplog):
    recipe, exp, _ = decoded
    old = exp / "decode_dev_old_greedy"
    old.mkdir()
    (old / "wer.txt").write_text("%WER 1.00 [ 1 / 100, 0 ins, 0 del, 1 sub ]\n")
    with caplog.at_level(logging.WARNING):
        text = write_results(recipe)
    assert str(old) in caplog.text and "result.json" in caplog.text
    assert "dev_old" not in text and "old_greedy" not in text


def test_decodings_with_cuts_scored_apart_are_named(decoded):
    recipe, exp, _ = decoded
    from test_decode_cli import UTTERANCES
    from test_lm_decode import TOK, spelled

    text, frames = UTTERANCES["clean"]
    lp = LogProbs(["u1"], [text], [1.0], [spelled(frames)], TOK, "best.pt",
                  undecodable={"u2": ("the cat sat there", "unreadable features")}, unspellable=["u1"])
    hyps, rtf = decode_log_probs(lp, DecodeOptions())
    wer, _ = write_result(decode_dir(exp, "test_x", "greedy"), "test_x", lp, hyps, DecodeOptions(), rtf)
    assert wer.dels == 4
    notes = write_results(recipe).split("scored apart from the others:")[1].split("Search settings")[0]
    assert [ln for ln in notes.splitlines() if ln.strip()] == [
        "- ds2 greedy test_x: " + lp.summary().splitlines()[0].removeprefix("# ")]
    assert "cannot spell: 1 " in notes and "could not be decoded: 1 " in notes


def test_no_result_at_all_is_an_error(tmp_path):
    (tmp_path / "exp" / "ds2" / "decode_dev_greedy").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="result.json"):
        write_results(tmp_path)


def test_set_order_dev_first_then_the_rest_alphabetically():
    assert set_order(["test", "train_all", "dev_other", "dev", "test-clean", "dev"]) == \
        ["dev", "dev_other", "test", "test-clean", "train_all"]


@pytest.mark.parametrize("chosen", ["averaged.pt", "best.pt", None])
def test_training_summary_gives_the_dev_cer_of_the_checkpoint_decoding_uses(decoded, chosen):
    recipe, exp, rates = decoded
    greedy_dev_cer = rates[("dev_clean", "greedy")][1]
    fraction = greedy_dev_cer.errors / greedy_dev_cer.ref  # as training and `ds2 average` measure it
    epochs = [{"epoch": i, "dev_cer": c, "seconds": 60.0, "step": 100 * (i + 1), "train_loss": 3.0 - i}
              for i, c in enumerate([0.5, fraction if chosen != "averaged.pt" else 0.3, 0.4])]
    (exp / "log").mkdir()
    (exp / "log" / "history.json").write_text(json.dumps({"epochs": epochs}))
    if chosen:
        report = {"averaged": ["epoch-2.pt", "epoch-3.pt"], "chosen": chosen,
                  "dev_cer_averaged": fraction if chosen == "averaged.pt" else 0.45,
                  "dev_cer_best": fraction if chosen == "best.pt" else 0.3}
        (exp / "checkpoints" / "averaged.json").write_text(json.dumps(report))
    text = write_results(recipe)
    which = {"averaged.pt": "average of epoch-2.pt, epoch-3.pt", "best.pt": "best.pt, epoch 2",
             None: "best.pt, epoch 2"}[chosen]
    m = re.search(r"best dev CER ([\d.]+)% \(([^)]*)\)", text)
    assert m and m.group(2) == which
    _, rows = table_rows(text)
    header, _ = table_rows(text)
    assert m.group(1) == rows["greedy"][header.index("dev_clean %CER")]
    by_epoch = f"- by epoch: dev CER 50.00 / {100 * epochs[1]['dev_cer']:.2f} / 40.00 %, training loss 3.000 / 2.000 / 1.000"
    assert by_epoch in text.splitlines()


def test_git_description_ignores_only_the_results_file_being_rewritten(tmp_path):
    import subprocess

    from ds2.report import git_description

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "recipe").mkdir()
    results, code = tmp_path / "recipe" / "RESULTS.md", tmp_path / "code.py"
    results.write_text("old\n")
    code.write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    results.write_text("new\n")  # a first model's stage 9 rewrote it
    head = git_description(tmp_path / "recipe", ignore=results)
    assert len(head) == 12 and not head.endswith("-dirty")
    assert git_description(tmp_path / "recipe").endswith("-dirty")
    code.write_text("x = 2\n")
    assert git_description(tmp_path / "recipe", ignore=results).endswith("-dirty")
