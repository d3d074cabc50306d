"""Deep Speech 2's claims measured with ds2: one small model per row, trained on one egs/synth corpus at
one budget, decoded greedily, and a table per claim with what the paper says and what the numbers say.

    python bench/paper_claims.py --out /tmp/paper --num-train 3200 --epochs 2 --seeds 42,43 \
        --write egs/synth/PAPER.md

The corpus is egs/synth's own recipe (a copy under OUT/corpus: stages 1-3 at --num-train training
utterances, and BPE tokens for the stride claim). Every row trains the same reference model (conf/ds2.yaml
with 3 recurrent layers) with the row's overrides for --epochs epochs, then decodes test with the last
epoch's weights; dev is the training log's greedy CER of those weights. Rows shared by several claims
(the reference) are trained once. A row already decoded is read, not re-run, so an interrupted run goes
on where it stopped; each row's log is OUT/logs/<row>.log (printed when it starts). --seeds runs every
selected row once per seed; the tables average every seed found on disk and show each.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ds2.report import cpu_description, git_description  # noqa: E402
from synth_ablation import rates, recipe_copy, torch_version, venv_env  # noqa: E402

BPE_SIZE = 300  # BPE pieces of the stride claim (blank included): "a few hundred"
SEED = 42       # train.seed of conf/ds2.yaml: the first seed of every row
# Every row starts from conf/ds2.yaml with these: 3 recurrent layers (the 3 of the depth claim), and
# no mid-epoch checkpoints (a row is short; resuming restarts its epoch)
REFERENCE = ["model.rnn_layers=3", "train.save_every_steps=0"]


@dataclass
class Row:
    what: str
    overrides: list[str] = field(default_factory=list)
    fraction: int = 1          # 1/fraction of the training utterances, each repeated fraction times
    world_size: int = 1        # training processes (torchrun)
    bpe: bool = False          # BPE_SIZE pieces instead of characters


def rows(equal: dict[str, int], max_duration: float) -> dict[str, Row]:
    """Every row by name. `equal`: the hidden size of "rnn" and "lstm" layers with the reference GRU's
    parameters; `max_duration`: the reference's seconds of audio per batch (DDP's processes take half each)."""
    stride = "model.conv_strides=[[{},4]]"
    return {
        "reference": Row("3 bidirectional GRU layers of 256, batch norm, SortaGrad, time stride 3, characters"),
        "no-bn": Row("no batch norm", ["model.batch_norm=false"]),
        "5-layers": Row("5 recurrent layers", ["model.rnn_layers=5"]),
        "5-layers-no-bn": Row("5 recurrent layers, no batch norm", ["model.rnn_layers=5", "model.batch_norm=false"]),
        "no-sortagrad": Row("first epoch shuffled", ["train.sortagrad=false"]),
        "no-bn-no-sortagrad": Row("no batch norm, first epoch shuffled",
                                  ["model.batch_norm=false", "train.sortagrad=false"]),
        "rnn": Row("simple RNN (clipped ReLU), the GRU's parameters",
                   ["model.rnn_type=rnn", f"model.rnn_hidden={equal['rnn']}"]),
        "lstm": Row("LSTM, the GRU's parameters", ["model.rnn_type=lstm", f"model.rnn_hidden={equal['lstm']}"]),
        "data-1/8": Row("1/8 of the utterances, each 8 times", fraction=8),
        "data-1/4": Row("1/4 of the utterances, each 4 times", fraction=4),
        "data-1/2": Row("1/2 of the utterances, each twice", fraction=2),
        "forward": Row("forward-only, row convolution of width 1 (no look-ahead past the convolution's 50 ms)",
                       ["model.bidirectional=false", "model.lookahead=0"]),
        "forward-row-5": Row("forward-only, row convolution over 5 future frames (150 ms)",
                             ["model.bidirectional=false", "model.lookahead=5"]),
        "forward-row-20": Row("forward-only, row convolution over 20 future frames (600 ms)",
                              ["model.bidirectional=false", "model.lookahead=20"]),
        "stride-2": Row("time stride 2", [stride.format(2)]),
        "stride-4": Row("time stride 4", [stride.format(4)]),
        "bpe-stride-2": Row(f"{BPE_SIZE} BPE pieces, time stride 2", [stride.format(2)], bpe=True),
        "bpe-stride-3": Row(f"{BPE_SIZE} BPE pieces, time stride 3", bpe=True),
        "bpe-stride-4": Row(f"{BPE_SIZE} BPE pieces, time stride 4", [stride.format(4)], bpe=True),
        "ddp-2": Row("2 processes (torchrun, DDP) of 1 thread, each half of the batch's seconds",
                     [f"train.max_duration={max_duration / 2:g}", "train.threads=1"], world_size=2),
    }


@dataclass
class Result:
    """One row's figures, averaged over its seeds."""
    params: int
    steps: int
    minutes: float          # training (and the per-epoch dev decoding) wall time
    epoch_minutes: float
    loss: tuple[float, float, float]  # train loss at 25, 50 and 100 % of the steps
    dev: float
    test: float
    tests: list[float]      # test CER of each seed
    hours: float            # distinct training audio
    commits: set[str]
    seconds: float          # wall time of every seed's training and decoding


# ---------------------------------------------------------------------------------------------------
# Running the rows


def corpus(args, bpe: bool) -> Path:
    """OUT/corpus/egs/synth with stages 1-3 done (and BPE tokens if `bpe`)."""
    recipe = recipe_copy(args.out / "corpus")
    sizes = ["--num-train", str(args.num_train), "--num-dev", str(args.num_dev), "--num-test", str(args.num_test)]
    with open(args.out / "logs" / "corpus.log", "a") as log:
        run_logged(["bash", "run.sh", "--stop-stage", "3", *sizes], recipe, log)
        if bpe:
            run_logged(["bash", "run.sh", "--stage", "3", "--stop-stage", "3", *sizes, "--token-type", "bpe",
                        "--vocab-size", str(BPE_SIZE)], recipe, log)
    return recipe


class StepFailed(Exception):
    pass


def run_logged(cmd: list[str], cwd: Path, log) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, cwd=cwd, env=venv_env(), stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise StepFailed(f"{Path(cmd[0]).name} {cmd[1]} failed (exit {proc.returncode}): see {log.name}")


def base_config(recipe: Path) -> Path:
    return recipe / "conf" / "ds2.yaml"


def train_cuts(recipe: Path, fraction: int) -> Path:
    """The training cuts, or the first 1/fraction of them (the corpus draws them at random) each
    repeated fraction times, so that an epoch has the steps of the whole set."""
    full = recipe / "data" / "fbank" / "synth_cuts_train.jsonl.gz"
    if fraction == 1:
        return full
    part = recipe / "data" / "fbank" / f"synth_cuts_train_1of{fraction}.jsonl.gz"
    if not part.exists():
        from lhotse import CutSet

        cuts = CutSet.from_file(full)
        cuts.subset(first=len(cuts) // fraction).repeat(times=fraction).to_file(part)
    return part


@functools.cache
def hours(cuts: Path) -> float:
    """Hours of distinct audio in a cut file (a repeated cut counts once); read once per file."""
    from lhotse import CutSet

    seen = {}
    for cut in CutSet.from_file(cuts):
        seen[cut.recording_id] = cut.duration
    return sum(seen.values()) / 3600


def folder(name: str) -> str:
    """A row's folder name under OUT/rows (and its log's): data-1/8 -> data-1of8."""
    return name.replace("/", "of")


def durations(cuts: Path) -> tuple[float, float, float]:
    """Shortest, median and longest duration (s) of a cut file."""
    from lhotse import CutSet

    seconds = sorted(cut.duration for cut in CutSet.from_file(cuts))
    return seconds[0], seconds[len(seconds) // 2], seconds[-1]


def exp_dir(args, name: str, seed: int) -> Path:
    return args.out / "rows" / (folder(name) + ("" if seed == SEED else f"-seed{seed}"))


def seed_dirs(args, name: str) -> list[Path]:
    """The folders of a row's seeds that were started."""
    return sorted(exp for exp in (args.out / "rows").glob(folder(name) + "*") if exp.name.split("-seed")[0] == folder(name))


def train_and_decode(args, recipe: Path, name: str, row: Row, seed: int) -> bool:
    """Train and decode a row (unless done); False if it failed, now or in an earlier run (its folder
    holds `failed`: remove the folder to try again). A failed row does not stop the others."""
    exp = exp_dir(args, name, seed)
    if (exp / "decode_test_final" / "result.json").exists():
        return True
    if (exp / "failed").exists():
        print(f"row {name} (seed {seed}) failed in an earlier run ({(exp / 'failed').read_text().strip()}); "
              f"remove {exp} to run it again", file=sys.stderr)
        return False
    log_path = args.out / "logs" / f"{exp.name}.log"
    print(f"row {name} (seed {seed}): training, log {log_path}", flush=True)
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "commit").write_text(git_description(REPO) + "\n")
    start = time.time()
    with open(log_path, "a") as log:
        try:
            train_row(args, recipe, exp, row, seed, log)
        except StepFailed as e:
            (exp / "failed").write_text(f"{e}\n")
            print(f"row {name} (seed {seed}): {e}", file=sys.stderr)
            return False
    (exp / "row_seconds").write_text(f"{time.time() - start:.1f}\n")
    return True


def train_row(args, recipe: Path, exp: Path, row: Row, seed: int, log) -> None:
    """`ds2 train` (under torchrun for several processes) of a row into `exp`, then `ds2 decode` of test
    with its last epoch's weights."""
    overrides = [*REFERENCE, f"train.epochs={args.epochs}", f"train.seed={seed}", *args.set, *row.overrides]
    lang = recipe / "data" / (f"lang_bpe_{BPE_SIZE}" if row.bpe else "lang_char")
    fbank = recipe / "data" / "fbank"
    bin_dir = Path(sys.executable).parent
    ds2 = str(bin_dir / "ds2")
    train = [ds2, "train"] if row.world_size == 1 else [
        str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", str(row.world_size), ds2, "train"]
    run_logged([*train, "--config", str(base_config(recipe)), "--exp-dir", str(exp), "--resume",
                "--train-cuts", str(train_cuts(recipe, row.fraction)),
                "--dev-cuts", str(fbank / "synth_cuts_dev.jsonl.gz"), "--stats", str(fbank / "synth_stats_train.pt"),
                "--lang-dir", str(lang), *(x for o in overrides for x in ("--set", o))], recipe, log)
    last = len(history(exp)["epochs"])
    run_logged([ds2, "decode", str(exp), "--checkpoint", str(exp / "checkpoints" / f"epoch-{last}.pt"),
                "--name", "final", "--cuts", f"test={fbank / 'synth_cuts_test.jsonl.gz'}"], recipe, log)


def train_max_duration(recipe: Path, extra: list[str]) -> float:
    from ds2.config import resolve_config

    return resolve_config(base_config(recipe), [*REFERENCE, *extra]).train.max_duration


def equal_hidden(recipe: Path, extra: list[str]) -> dict[str, int]:
    """Hidden sizes (multiples of 8) of "rnn" and "lstm" layers whose model has the parameter count
    nearest the reference GRU model's (with the overrides `extra` of every row)."""
    base, vocab = [*REFERENCE, *extra], vocabulary(recipe, bpe=False)
    target = parameters(base_config(recipe), base, vocab)
    return {kind: min(range(8, 1025, 8), key=lambda h: abs(
        parameters(base_config(recipe), [*base, f"model.rnn_type={kind}", f"model.rnn_hidden={h}"], vocab) - target))
        for kind in ("rnn", "lstm")}


# ---------------------------------------------------------------------------------------------------
# Reading them


def history(exp: Path) -> dict:
    return json.loads((exp / "log" / "history.json").read_text())


def parameters(config: Path, overrides: list[str], vocab: int) -> int:
    """Parameters of the model of a config file with overrides, over 80 fbank bins and `vocab` tokens."""
    from ds2.config import resolve_config
    from ds2.model.deepspeech2 import DeepSpeech2

    return DeepSpeech2(resolve_config(config, overrides).model, 80, vocab).num_params()


def vocabulary(recipe: Path, bpe: bool) -> int:
    tokens = recipe / "data" / (f"lang_bpe_{BPE_SIZE}" if bpe else "lang_char") / "tokens.txt"
    return len(tokens.read_text().splitlines())


def loss_at(steps: list[dict], share: float) -> float:
    """The logged train loss nearest `share` of the steps (NaN if no step was logged: fewer steps than
    train.log_interval)."""
    if not steps:
        return math.nan
    total = steps[-1]["step"]
    return min(steps, key=lambda s: abs(s["step"] - share * total))["loss"]


def result(args, recipe: Path, name: str, row: Row) -> Result | None:
    exps = [exp for exp in seed_dirs(args, name) if (exp / "decode_test_final" / "result.json").exists()]
    if not exps:
        return None
    figures = []
    for exp in exps:
        h = history(exp)
        epochs = h["epochs"]
        figures.append(dict(
            steps=epochs[-1]["step"], minutes=sum(e["seconds"] for e in epochs) / 60, epoch_minutes=sum(e["seconds"] for e in epochs) / 60 / len(epochs),
            loss=tuple(loss_at(h["steps"], s) for s in (0.25, 0.5, 1.0)), dev=100 * epochs[-1]["dev_cer"],
            test=rates(exp / "decode_test_final")[0], commit=(exp / "commit").read_text().strip(),
            seconds=float((exp / "row_seconds").read_text())))

    def mean(key):
        return sum(f[key] for f in figures) / len(figures)

    # Every seed of a row has the same model: its parameters are counted once
    return Result(params=parameters(exps[0] / "config.yaml", [], vocabulary(recipe, row.bpe)), steps=round(mean("steps")), minutes=mean("minutes"),
                  epoch_minutes=mean("epoch_minutes"),
                  loss=tuple(sum(f["loss"][i] for f in figures) / len(figures) for i in range(3)),
                  dev=mean("dev"), test=mean("test"), tests=[f["test"] for f in figures],
                  hours=hours(train_cuts(recipe, row.fraction)), commits={f["commit"] for f in figures},
                  seconds=sum(f["seconds"] for f in figures))


# ---------------------------------------------------------------------------------------------------
# The claims: rows, what the paper says, and what the numbers say


def verdict(agrees: bool | None) -> str:
    return {True: "agrees", False: "**disagrees**", None: "not testable here"}[agrees]


# Each claim's judge reads the rows' results and returns (what we see, agrees: True, False or None, the
# likeliest reason where it does not agree). Its numbers are the tables'.


def claim_batch_norm(r):
    d3 = r["no-bn"].test - r["reference"].test
    d5 = r["5-layers-no-bn"].test - r["5-layers"].test
    early3 = r["no-bn"].loss[0] - r["reference"].loss[0]
    early5 = r["5-layers-no-bn"].loss[0] - r["5-layers"].loss[0]
    seen = (f"without batch norm, test CER is {d3:+.2f} points at 3 layers and {d5:+.2f} at 5, and the loss at "
            f"25 % of the steps {early3:+.3f} and {early5:+.3f}")
    why = ("the rows are a few hundred steps on under 3 hours of synthetic speech, far from the converged "
           "models on thousands of hours the paper compares")
    return seen, d3 > 0 and d5 > 0 and d5 > d3 and early3 > 0 and early5 > 0, why


def claim_sortagrad(r):
    with_bn = r["no-sortagrad"].test - r["reference"].test
    without = r["no-bn-no-sortagrad"].test - r["no-bn"].test
    seen = (f"a shuffled first epoch moves test CER {with_bn:+.2f} points with batch norm and {without:+.2f} "
            "without (the loss at 25 % is not comparable: a sorted epoch's first quarter is its shortest "
            "utterances)")
    why = ("the training utterances are short and alike (see the durations above), so a shuffled first epoch "
           "holds no batch much longer than a sorted one; and ds2 trains with AdamW, a learning-rate warm-up "
           "and gradient clipping, which tame the first steps whatever their order. The paper trained with "
           "SGD and momentum on far longer utterances, where the long ones early on are what SortaGrad keeps away")
    return seen, with_bn > 0 and without > 0 and without > with_bn, why


def claim_cell(r):
    gru, rnn, lstm = r["reference"], r["rnn"], r["lstm"]
    seen = (f"test CER GRU {gru.test:.2f}, simple RNN {rnn.test:.2f}, LSTM {lstm.test:.2f}; "
            f"{rnn.minutes / gru.minutes:.1f}x and {lstm.minutes / gru.minutes:.1f}x the GRU's training time")
    why = ("at equal parameters the simple RNN layer is almost twice as wide as the GRU's (see the config diff); "
           "over a few hundred steps on utterances of a few seconds, width counts for more than the gates' "
           "longer memory. The paper compares much larger networks trained to convergence")
    return seen, gru.test < rnn.test, why


def claim_data(r):
    names = ["data-1/8", "data-1/4", "data-1/2", "reference"]
    xs = [math.log10(r[n].hours) for n in names]
    ys = [math.log10(r[n].test) for n in names]
    slope, intercept, r2 = fit(xs, ys)
    per10 = 100 * (1 - 10 ** slope)
    seen = (f"the fit log10 CER = {intercept:.3f} {slope:+.3f} log10 hours (R² {r2:.3f}): CER "
            f"{'-' if per10 >= 0 else '+'}{abs(per10):.0f} % relative per 10x data")
    why = ("every row has the same steps, so the small sets are seen many times over, and synthetic voices "
           "repeat across sentences: added utterances bring less that is new than added hours of real speech")
    return seen, slope < 0 and r2 > 0.9, why


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares y = intercept + slope x: (slope, intercept, R²)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return slope, intercept, 1 - ss_res / ss_tot if ss_tot else 1.0


def claim_row_conv(r):
    fwd, bi, row5, row20 = r["forward"], r["reference"], r["forward-row-5"], r["forward-row-20"]
    closed = [(fwd.test - x.test) / (fwd.test - bi.test) * 100 if fwd.test != bi.test else math.nan for x in (row5, row20)]
    moved = [f"{frames} frames {'closes' if c >= 0 else 'widens'} it by {abs(c):.0f} %" for frames, c in zip((5, 20), closed)]
    seen = (f"forward-only {fwd.test:.2f}, with a row convolution {row5.test:.2f} (5 frames) and {row20.test:.2f} "
            f"(20), bidirectional {bi.test:.2f}: of the forward-only row's gap to the bidirectional one, a row "
            f"convolution over {' and over '.join(moved)}")
    why = ("a row convolution starts as a random mix of its frames (PyTorch's initialisation of a depthwise "
           "convolution), which scrambles the forward GRUs' outputs until it is learnt: over 20 frames the "
           f"train loss at 50 % of the steps is {row20.loss[1]:.3f} against {fwd.loss[1]:.3f} without, and a few "
           "hundred steps do not undo it. The forward-only rows also have half the bidirectional row's "
           f"recurrent parameters ({fwd.params / 1e6:.2f} M against {bi.params / 1e6:.2f} M in all)")
    return seen, all(c > 50 for c in closed), why


def claim_stride(r):
    char = [r[n] for n in ("stride-2", "reference", "stride-4")]
    bpe = [r[n] for n in ("bpe-stride-2", "bpe-stride-3", "bpe-stride-4")]
    seen = (f"from stride 2 to 4, characters {char[0].test:.2f} -> {char[2].test:.2f} "
            f"({char[2].test - char[0].test:+.2f}; stride 3 {char[1].test:.2f}), BPE {bpe[0].test:.2f} -> "
            f"{bpe[2].test:.2f} ({bpe[2].test - bpe[0].test:+.2f})")
    if min(x.test for x in bpe) >= 80:
        why = (f"the BPE rows did not learn in {bpe[1].steps} steps: test CER {min(x.test for x in bpe):.0f}-"
               f"{max(x.test for x in bpe):.0f} % and a final train loss of {min(x.loss[2] for x in bpe):.2f} or more "
               f"against {max(x.loss[2] for x in char):.2f} or less with characters. {BPE_SIZE} pieces learnt from "
               "a few thousand sentences are each seen far less often than a character; the claim needs a "
               "budget (--epochs) this run did not have")
        return seen, None, why
    why = "the pieces are learnt from a few thousand sentences, and each is seen far less often than a character"
    return seen, (bpe[2].test - bpe[0].test) < (char[2].test - char[0].test), why


def claim_ddp(r):
    one, two = r["reference"], r["ddp-2"]
    speedup = one.epoch_minutes / two.epoch_minutes
    seen = (f"an epoch takes {one.epoch_minutes:.2f} min in one process of 2 threads and {two.epoch_minutes:.2f} "
            f"in two processes of 1 thread ({speedup:.2f}x); test CER {one.test:.2f} and {two.test:.2f}")
    why = ("both rows run on the same 2 cores, so there is nothing to scale into: the row checks that DDP "
           "trains as well at the same global batch. (An epoch here includes loading the data and the dev "
           "pass; bench/ddp_scaling.py times training steps alone.) Scaling needs GPUs or more cores")
    return seen, None, why


@dataclass
class Claim:
    title: str
    paper: str
    rows: list[str]
    judge: object  # (results by row) -> (what we see, agrees, the likeliest reason where it does not)


CLAIMS = {
    "1": Claim("Batch norm, by depth",
               "Sequence-wise batch norm on the recurrent layers' inputs speeds convergence and lowers the "
               "final error, and the gain grows with depth (\"Batch Normalization for Deep RNNs\").",
               ["reference", "no-bn", "5-layers", "5-layers-no-bn"], claim_batch_norm),
    "2": Claim("SortaGrad",
               "Presenting the first epoch shortest utterances first stabilises early training and lowers "
               "the final error, more so without batch norm (\"SortaGrad\").",
               ["reference", "no-sortagrad", "no-bn", "no-bn-no-sortagrad"], claim_sortagrad),
    "3": Claim("Recurrent cell at equal parameters",
               "At the same parameter count, GRUs reach a lower error than simple RNNs in small networks "
               "(\"Comparison of simple RNNs and GRUs\"); the paper tabulates no LSTM.",
               ["reference", "rnn", "lstm"], claim_cell),
    "4": Claim("Training data",
               "Error falls log-linearly with the training hours: about 40 % relative per 10x data, a straight "
               "line on log-log axes (\"Scaling Data\").",
               ["data-1/8", "data-1/4", "data-1/2", "reference"], claim_data),
    "5": Claim("Row convolution",
               "A forward-only model with a row convolution (a few frames of look-ahead) comes close to the "
               "bidirectional model (\"Row Convolution and Unidirectional Models\").",
               ["forward", "forward-row-5", "forward-row-20", "reference"], claim_row_conv),
    "6": Claim("Time stride and output units",
               "A larger time stride costs accuracy with characters, much less with larger units (bigrams in "
               "the paper, BPE pieces here), which need fewer output frames (\"Striding\").",
               ["stride-2", "reference", "stride-4", "bpe-stride-2", "bpe-stride-3", "bpe-stride-4"], claim_stride),
    "7": Claim("Synchronous data parallelism",
               "Synchronous SGD over GPUs scales near-linearly with their number (\"Scalability and Data-Parallelism\").",
               ["reference", "ddp-2"], claim_ddp),
}


def claim_table(claim: Claim, r: dict[str, Result], defs: dict[str, Row], failed: dict[str, str]) -> list[str]:
    lines = ["| row | config diff | params | steps | minutes | loss 25 % | loss 50 % | loss 100 % "
             "| dev %CER | test %CER |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in claim.rows:
        row, res = defs[name], r.get(name)
        diff = "; ".join([row.what, *(f"`{o}`" for o in row.overrides)]
                         + ([f"{res.hours:.2f} hours of audio"] if claim.judge is claim_data and res else []))
        if res is None:
            lines.append(f"| {name} | {diff} | | | | | | | | {'failed: ' + failed[name] if name in failed else 'not run'} |")
            continue
        test = f"{res.test:.2f}" + (f" ({', '.join(f'{t:.2f}' for t in res.tests)})" if len(res.tests) > 1 else "")
        lines.append(f"| {name} | {diff} | {res.params / 1e6:.2f} M | {res.steps} | {res.minutes:.1f} "
                     f"| {res.loss[0]:.3f} | {res.loss[1]:.3f} | {res.loss[2]:.3f} | {res.dev:.2f} | {test} |")
    return lines


def report(args, recipe: Path, defs: dict[str, Row], claims: list[str]) -> str:
    r = {name: res for name in defs if (res := result(args, recipe, name, defs[name])) is not None}
    failed = {name: f"see logs/{exp.name}.log" for name in defs for exp in seed_dirs(args, name)
              if (exp / "failed").exists()}
    summary = ["| claim | paper says | we see | |", "| --- | --- | --- | --- |"]
    sections = []
    for key in claims:
        claim = CLAIMS[key]
        sections += [f"## {key}. {claim.title}", "", f"**Paper:** {claim.paper}", ""]
        sections += claim_table(claim, r, defs, failed)
        missing = [name for name in claim.rows if name not in r]
        if missing:
            sections += ["", f"**We see:** no verdict: row {', '.join(missing)} not measured."]
        else:
            seen, agrees, why = claim.judge(r)
            spreads = [max(r[n].tests) - min(r[n].tests) for n in claim.rows if len(r[n].tests) > 1]
            if spreads:
                seen += f" (a row's seeds differ by up to {max(spreads):.2f} points of test CER)"
            sections += ["", f"**We see:** {seen}: {verdict(agrees)}."]
            if agrees is not True:
                sections += ["", f"**Likeliest reason:** {why}."]
            summary.append(f"| {key}. {claim.title} | {claim.paper} | {seen} | {verdict(agrees)} |")
        sections.append("")
    commits = sorted({c for res in r.values() for c in res.commits})
    row_hours = sum(res.seconds for res in r.values()) / 3600
    corpus_hours = float((args.out / "corpus_seconds").read_text()) / 3600
    hours_of = f"{r['reference'].hours:.2f} hours of audio" if "reference" in r else "its audio"
    lengths = durations(train_cuts(recipe, 1))
    return "\n".join([
        "# Deep Speech 2's claims, measured with ds2",
        "",
        "The claims of Amodei et al., *Deep Speech 2: End-to-End Speech Recognition in English and Mandarin* "
        "(ICML 2016; arXiv:1512.02595), each beside what ds2 does with the same switch; the paper's sections "
        "are named by their titles. Generated by `bench/paper_claims.py` (command below).",
        "",
        "Each row trains one small model on the same synthetic English corpus (egs/synth's recipe at "
        f"{args.num_train} training utterances, {hours_of}, {lengths[0]:.1f}-{lengths[2]:.1f} s long, median "
        f"{lengths[1]:.1f} s; dev {args.num_dev} and test {args.num_test} "
        f"utterances of held-out sentences and espeak-ng voices) for {args.epochs} epoch{'s' * (args.epochs != 1)} "
        "with the same seeds (train.seed), "
        "and is scored by greedy decoding (no LM) of its last epoch's weights. The reference row is "
        "conf/ds2.yaml with 3 recurrent layers; every other row changes what its config diff says. "
        "loss: the train CTC loss logged nearest 25, 50 and 100 % of the steps; minutes: training with its "
        "per-epoch dev decoding. Where a test CER lists values in brackets, the row ran once per seed and "
        "its figures are their mean.",
        "",
        "These are small models trained for minutes on a few hours of synthetic speech, not the paper's "
        "12,000 hours: a disagreement says what happens at this scale, not that the paper is wrong. "
        "Nothing here has heard a person.",
        "",
        *summary,
        "",
        *sections,
        "## How it was made",
        "",
        f"- CPU: {cpu_description()}, {len(os.sched_getaffinity(0))} cores; torch {torch_version()}",
        f"- git of the rows: {', '.join(f'`{c}`' for c in commits)}; of this report: `{git_description(REPO)}`",
        f"- wall time: {corpus_hours + row_hours:.1f} h in all ({corpus_hours * 60:.0f} min for the corpus, "
        f"{row_hours:.1f} h for the {sum(len(res.tests) for res in r.values())} trainings and decodings)",
        f"- command: `python bench/paper_claims.py {' '.join(sys.argv[1:])}`",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="working folder (corpus, rows, logs)")
    parser.add_argument("--num-train", type=int, default=3200, help="training utterances of the corpus")
    parser.add_argument("--num-dev", type=int, default=200)
    parser.add_argument("--num-test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every row")
    parser.add_argument("--claims", default=",".join(CLAIMS), help="comma-separated claim numbers (default: all)")
    parser.add_argument("--rows", default=None, help="comma-separated rows to run (default: every row of --claims)")
    parser.add_argument("--seeds", default=str(SEED), help="comma-separated train.seed values run for each row")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override of every row (e.g. a tiny model for a test)")
    parser.add_argument("--write", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    claims = args.claims.split(",")
    unknown = [c for c in claims if c not in CLAIMS]
    if unknown:
        parser.error(f"no claim {', '.join(unknown)}: the claims are {', '.join(CLAIMS)}")
    wanted = args.rows.split(",") if args.rows else list(dict.fromkeys(n for c in claims for n in CLAIMS[c].rows))
    names = rows({"rnn": 0, "lstm": 0}, 0)
    missing = [n for n in wanted if n not in names]
    if missing:
        parser.error(f"no row {', '.join(missing)}: the rows are {', '.join(names)}")
    try:
        from ds2.config import resolve_config

        resolve_config(REPO / "egs" / "synth" / "conf" / "ds2.yaml", [*REFERENCE, *args.set])
    except ValueError as e:
        parser.error(f"--set: {e}")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    start = time.time()
    try:
        recipe = corpus(args, bpe=any(names[n].bpe for n in wanted))
    except StepFailed as e:
        raise SystemExit(f"the corpus: {e}") from None
    if not (args.out / "corpus_seconds").exists():
        (args.out / "corpus_seconds").write_text(f"{time.time() - start:.1f}\n")
    defs = rows(equal_hidden(recipe, args.set), train_max_duration(recipe, args.set))
    failed = [f"{name} (seed {seed})" for name in wanted for seed in (int(s) for s in args.seeds.split(","))
              if not train_and_decode(args, recipe, name, defs[name], seed)]
    text = report(args, recipe, defs, claims)
    (args.out / "paper.md").write_text(text)
    if args.write:
        args.write.write_text(text)
    print(text)
    if failed:
        raise SystemExit(f"failed rows (the report names them): {', '.join(failed)}")


if __name__ == "__main__":
    main()
