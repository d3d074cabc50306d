"""bench/paper_claims.py on a tiny corpus: two rows of the batch-norm claim are trained, decoded and
written into the report with their own numbers, a second run reads them instead of training again, and
a claim that does not exist is refused before anything is written."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

SCRIPT = REPO / "bench" / "paper_claims.py"
TINY = ["--num-train", "40", "--num-dev", "6", "--num-test", "6", "--epochs", "1",
        "--set", "model.rnn_hidden=32", "--set", "model.conv_channels=[4]", "--set", "train.num_workers=0",
        "--set", "train.max_duration=40", "--set", "train.log_interval=1"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=600)


def table_rows(text: str) -> dict[str, list[str]]:
    """The cells of each row of the report's claim tables, by row name."""
    return {m.group(1): [c.strip() for c in m.group(0).strip("|").split("|")]
            for m in re.finditer(r"^\| ([\w/-]+) \| .*\|$", text, re.M)}


def test_two_rows_are_trained_written_with_their_numbers_and_read_back_on_a_rerun(tmp_path):
    out, report = tmp_path / "out", tmp_path / "PAPER.md"
    args = ["--out", str(out), *TINY, "--claims", "1", "--rows", "reference,no-bn", "--write", str(report)]
    first = run(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "row reference (seed 42): training, log" in first.stdout
    assert (out / "logs" / "no-bn.log").exists()

    cells = table_rows(report.read_text())
    for name in ("reference", "no-bn"):
        _, diff, params, steps, minutes, *losses, dev, test = cells[name]
        exp = out / "rows" / name
        decoded = json.loads((exp / "decode_test_final" / "result.json").read_text())
        assert float(test) == pytest.approx(decoded["CER"]["rate"], abs=0.005)
        history = json.loads((exp / "log" / "history.json").read_text())
        assert int(steps) == history["epochs"][-1]["step"] > 0
        assert float(dev) == pytest.approx(100 * history["epochs"][-1]["dev_cer"], abs=0.005)
        assert float(losses[2]) == pytest.approx(history["steps"][-1]["loss"], abs=0.0005)
        assert all(math.isfinite(float(x)) for x in losses) and float(params.split()[0]) > 0
    # The switch is the row's, and the model without batch norm has fewer parameters
    assert "`model.batch_norm=false`" in cells["no-bn"][1]
    assert float(cells["no-bn"][2].split()[0]) <= float(cells["reference"][2].split()[0])
    assert cells["5-layers"][-1] == "not run"  # rows of the claim not asked for are named, not invented
    assert "CPU: " in report.read_text() and "command: `python bench/paper_claims.py" in report.read_text()

    before = {p: p.stat().st_mtime_ns for p in (out / "rows").rglob("*") if p.is_file()}
    second = run(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training, log" not in second.stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "rows").rglob("*") if p.is_file()} == before
    assert table_rows(report.read_text())["no-bn"] == cells["no-bn"]


def test_an_unknown_claim_or_row_is_refused_and_nothing_is_written(tmp_path):
    for bad, word in ((["--claims", "1,9"], "no claim 9"), (["--rows", "reference,bigru"], "no row bigru")):
        proc = run("--out", str(tmp_path / "out"), *TINY, *bad)
        assert proc.returncode == 2 and word in proc.stderr
        assert not (tmp_path / "out").exists()


def test_the_log_linear_fit_recovers_a_power_law():
    sys.path.insert(0, str(REPO / "bench"))
    from paper_claims import fit

    hours = [0.5, 1, 2, 4]
    slope, intercept, r2 = fit([math.log10(h) for h in hours], [math.log10(30 * h ** -0.2) for h in hours])
    assert slope == pytest.approx(-0.2) and 10 ** intercept == pytest.approx(30) and r2 == pytest.approx(1)


def test_a_row_that_fails_is_recorded_and_not_retried_and_the_table_says_so(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "bench"))
    import argparse

    import paper_claims

    recipe = tmp_path / "recipe"  # a recipe whose stages never ran: no cuts to train on
    (recipe / "conf").mkdir(parents=True)
    (recipe / "conf" / "ds2.yaml").write_text((REPO / "egs" / "synth" / "conf" / "ds2.yaml").read_text())
    args = argparse.Namespace(out=tmp_path / "out", epochs=1, set=[])
    (args.out / "logs").mkdir(parents=True)
    row = paper_claims.rows({"rnn": 8, "lstm": 8}, 80)["no-bn"]

    assert paper_claims.train_and_decode(args, recipe, "no-bn", row, 42) is False
    failed = (args.out / "rows" / "no-bn" / "failed").read_text()
    assert "ds2 train failed (exit" in failed and "logs/no-bn.log" in failed
    assert "Error: Invalid value for '--train-cuts'" in (args.out / "logs" / "no-bn.log").read_text()  # ds2's own
    log_size = (args.out / "logs" / "no-bn.log").stat().st_size
    assert paper_claims.train_and_decode(args, recipe, "no-bn", row, 42) is False
    assert (args.out / "logs" / "no-bn.log").stat().st_size == log_size  # not run again
    assert "remove" in capsys.readouterr().err

    table = paper_claims.claim_table(paper_claims.CLAIMS["1"], {}, paper_claims.rows({"rnn": 8, "lstm": 8}, 80),
                                     {"no-bn": "see logs/no-bn.log"})
    assert any(line.startswith("| no-bn |") and line.endswith("| failed: see logs/no-bn.log |") for line in table)
