"""What each added engine and augmentation of egs/synth does to the unseen espeak-ng voices (test)
and to the synthesiser never heard (heldout): one egs/synth run per row, each adding one thing to
the row above, all on the same reduced budget (`--num-train` utterances, `--epochs` epochs of the
demo's model), decoded greedily.

    python bench/synth_ablation.py --out /tmp/ablation --num-train 2500 --epochs 2 \
        --write egs/synth/ABLATION.md

Each row is the real recipe (a copy of egs/synth under OUT/<row>): stages 1-3 with the row's
corpus options, stage 6 with its training overrides (no averaging), stage 8 with greedy search.
Dev, test and heldout are the same utterances in every row (the corpus plans them before the
training set). Prints the table as Markdown and writes it to OUT/ablation.md (and --write), with
the commit, the CPU and the command; a row already decoded is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import re
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ds2.report import cpu_description, git_description  # noqa: E402

# The corpus options of run.sh of the first row: no festival, no augmentation, every voice as it speaks
PLAIN = {"--festival-share": "0", "--flite-share": "0", "--noise-prob": "0", "--reverb-prob": "0", "--telephone-prob": "0",
         "--resample-prob": "0", "--resample": "0.85 1.2", "--vocode-prob": "0", "--speed": "175 175", "--pitch": "50 50"}
# (name, what it adds, corpus options it changes, training overrides it adds): each row adds to the one above
ROWS = [
    ("plain", "espeak-ng only, every voice at its own rate and pitch, clean", {}, []),
    ("speed-pitch", "+ speed 140-200 wpm and pitch 25-75", {"--speed": "140 200", "--pitch": "25 75"}, []),
    ("noise", "+ noise on 30 % (15-35 dB SNR)", {"--noise-prob": "0.3"}, []),
    ("festival", "+ festival's kal and ked diphone voices for 30 %", {"--festival-share": "0.3"}, []),
    ("reverb", "+ reverberation on 20 % (T60 0.2-0.8 s)", {"--reverb-prob": "0.2"}, []),
    ("telephone", "+ telephone channel on 10 %", {"--telephone-prob": "0.1"}, []),
    ("resample", "+ resampling of 30 % by 0.85-1.2 (pitch and formants; tempo kept)", {"--resample-prob": "0.3"}, []),
    ("freq-warp", "+ frequency warping of +-10 % (training)", {}, ["train.freq_warp=0.1"]),
    ("spec-augment", "+ SpecAugment (training)", {}, ["train.spec_augment=true"]),
]
# Candidate mixes for the demo, each whole on top of PLAIN (not of the row above): what the ablation
# kept (festival, resampling, noise for a microphone's sake), without what did nothing for heldout
LEAN = {"--speed": "140 200", "--pitch": "25 75", "--noise-prob": "0.3", "--festival-share": "0.3",
        "--resample-prob": "0.3"}
HIGHER = {**LEAN, "--resample-prob": "0.5", "--resample": "0.95 1.3"}
DEMO = {**HIGHER, "--festival-share": "0.2"}
MIXES = [
    ("lean", "speed-pitch, noise, festival 30 %, resampling of 30 % (0.85-1.2); no reverberation or telephone",
     LEAN, []),
    ("higher", "lean, resampling of 50 % by 0.95-1.3 (the training voices are mostly male, the held-out one female)",
     HIGHER, []),
    ("demo", "higher, festival 20 %: egs/synth's mix", DEMO, []),
    ("vocoder", "demo, a third re-synthesised by a pulse/noise vocoder (as parametric synthesis sounds)",
     {**DEMO, "--vocode-prob": "0.3"}, []),
    ("flite-10", "demo, flite's clustergen voices rms and awb for 10 %", {**DEMO, "--flite-share": "0.1"}, []),
    ("flite-20", "demo, flite's rms and awb for 20 %", {**DEMO, "--flite-share": "0.2"}, []),
    ("flite-20-festival-10", "demo, flite 20 % and festival 10 % (espeak-ng keeps 70 %)",
     {**DEMO, "--flite-share": "0.2", "--festival-share": "0.1"}, []),
    ("flite-20-lr", "flite-20 trained at half the peak learning rate (3e-3 to 1.5e-3)",
     {**DEMO, "--flite-share": "0.2"}, ["train.lr=1.5e-3"]),
]


def row_options() -> list[tuple[str, str, list[str], list[str]]]:
    """(name, what, run.sh's corpus options, training overrides) of each row, the changes of the rows
    above included."""
    rows, corpus, overrides = [], dict(PLAIN), []
    for name, what, changes, extra in ROWS:
        corpus = {**corpus, **changes}
        overrides = overrides + extra
        rows.append((name, what, flags(corpus), list(overrides)))
    return rows


def mix_options() -> list[tuple[str, str, list[str], list[str]]]:
    """(name, what, run.sh's corpus options, training overrides) of each mix: PLAIN with its changes."""
    return [(name, what, flags({**PLAIN, **changes}), list(extra)) for name, what, changes, extra in MIXES]


def flags(corpus: dict[str, str]) -> list[str]:
    return [x for flag, value in corpus.items() for x in (flag, value)]


def recipe_copy(root: Path) -> Path:
    """OUT/<row>/egs/synth: the recipe beside egs/asr.sh, egs/path.sh and a link to utils/."""
    recipe = root / "egs" / "synth"
    if not recipe.exists():
        shutil.copytree(REPO / "egs" / "synth", recipe, ignore=shutil.ignore_patterns("data", "exp", "RESULTS.md", "*.png"))
        for name in ("asr.sh", "path.sh"):
            shutil.copy(REPO / "egs" / name, root / "egs" / name)
        (root / "utils").symlink_to(REPO / "utils")
    return recipe


def venv_env() -> dict[str, str]:
    """The environment with this Python's bin folder (ds2, torchrun) first on PATH."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def run(recipe: Path, args: list[str], log) -> None:
    proc = subprocess.run(["bash", "run.sh", *args], cwd=recipe, env=venv_env(), stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"run.sh {' '.join(args)} failed in {recipe} (exit {proc.returncode}): see {log.name}")


def measure(args, name: str, what: str, corpus: list[str], overrides: list[str]) -> str:
    """The table row of one run of the recipe (run unless already decoded)."""
    recipe = recipe_copy(args.out / name)
    decoded = all((recipe / "exp" / "ds2" / f"decode_{s}_greedy" / "result.json").exists() for s in ("test", "heldout"))
    with open(args.out / f"{name}.log", "a") as log:
        train = " ".join([f"train.epochs={args.epochs}", *overrides])
        if not decoded:
            (args.out / name / "commit").write_text(git_description(REPO) + "\n")
            run(recipe, ["--stop-stage", "3", "--num-train", str(args.num_train), *corpus], log)
            run(recipe, ["--stage", "6", "--stop-stage", "6", "--avg", "1", "--overrides", train], log)
            run(recipe, ["--stage", "8", "--stop-stage", "8", "--methods", "greedy"], log)
    minutes = logged_minutes(args.out / f"{name}.log")
    (test_cer, test_wer), (held_cer, held_wer) = cer(recipe, "test"), cer(recipe, "heldout")
    commit = (args.out / name / "commit").read_text().strip() if (args.out / name / "commit").exists() else "?"
    return (f"| {name} | {what} | {test_cer:.2f} | {held_cer:.2f} | {test_wer:.2f} | {held_wer:.2f} "
            f"| {minutes:.1f} | `{commit}` |")


def cer(recipe: Path, split: str) -> tuple[float, float]:
    return rates(recipe / "exp" / "ds2" / f"decode_{split}_greedy")


def rates(decoding: Path) -> tuple[float, float]:
    """(%CER, %WER) of a `ds2 decode` folder."""
    result = json.loads((decoding / "result.json").read_text())
    return result["CER"]["rate"], result["WER"]["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=2400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", default=None, help="comma-separated row and mix names (default: all)")
    parser.add_argument("--write", type=Path, default=None, help="also write the table here")
    parser.add_argument("--curve", type=Path, default=None,
                        help="EXP_DIR of a full egs/synth run (e.g. egs/synth/exp/ds2): add its epochs' test and "
                        "heldout CER (default: keep the section of the --write table)")
    args = parser.parse_args()
    wanted = set(args.rows.split(",")) if args.rows else None
    kept = kept_rows(args.write) if wanted and args.write and args.write.exists() else {}
    header = ["| {} | what it {} | test %CER (unseen espeak-ng voices) | heldout %CER (festival HTS, never heard) "
              "| test %WER | heldout %WER | minutes | git |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    tables = {}
    for section, options, words in (("rows", row_options(), ("row", "adds")), ("mixes", mix_options(), ("mix", "is"))):
        tables[section] = [header[0].format(*words), header[1]]
        for name, what, corpus, overrides in options:
            if not wanted or name in wanted:
                tables[section].append(measure(args, name, what, corpus, overrides))
                print(tables[section][-1], flush=True)
            elif name in kept:
                tables[section].append(kept[name])
    text = "\n".join([
        "# egs/synth: what each engine and augmentation does",
        "",
        f"Each row is one run of egs/synth on the same budget: {args.num_train} training utterances, "
        f"{args.epochs} epochs of conf/ds2.yaml's model, greedy search; each row adds one thing to the row above. "
        "test: 300 sentences read by espeak-ng voices held out of training; heldout: 200 of those sentences read by "
        "festival's cmu_us_slt_arctic_hts (statistical parametric synthesis), an engine and voice never heard "
        "in training. A row's minutes include synthesis, features, training and decoding; its commit (last "
        "column) holds the conf/ds2.yaml it trained.",
        "",
        *tables["rows"],
        "",
        "## Mixes for the demo",
        "",
        "The same budget; each mix is a whole configuration on top of the plain row (not of the row above).",
        "",
        *tables["mixes"],
        "",
        *(epoch_curve(args.curve, args.out) if args.curve else kept_curve(args.write)),
        f"- git of this table: `{git_description(REPO)}`; each row's in its last column",
        f"- CPU: {cpu_description()}, {len(os.sched_getaffinity(0))} cores; torch {torch_version()}"
        + (f" (rows {', '.join(n for n in kept if n != 'CPU')} kept from the previous table: {kept['CPU']})" if kept else ""),
        f"- command: `python bench/synth_ablation.py {' '.join(sys.argv[1:])}`",
        "",
    ])
    (args.out / "ablation.md").write_text(text)
    if args.write:
        args.write.write_text(text)
    print(text)


CURVE_TITLE = "## The demo's model by epoch"


def epoch_curve(exp: Path, out: Path) -> list[str]:
    """The section of CURVE_TITLE: every epoch checkpoint of a trained egs/synth experiment (EXP_DIR
    of `./run.sh`, e.g. `make demo`'s egs/synth/exp/ds2) decoded greedily on test and heldout, beside
    the dev CER and train loss of its training log. The decodings go to OUT/curve (EXP_DIR's
    RESULTS.md does not see them) and are reused when there."""
    recipe = exp.resolve().parents[1]
    history = json.loads((exp / "log" / "history.json").read_text())["epochs"]
    work = out / "curve"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(exp / "config.yaml", work / "config.yaml")
    sets = [x for split in ("test", "heldout") for x in ("--cuts", f"{split}={recipe / 'data' / 'fbank' / f'synth_cuts_{split}.jsonl.gz'}")]
    rows = []
    for entry in history:
        epoch = entry["epoch"] + 1
        checkpoint = exp / "checkpoints" / f"epoch-{epoch}.pt"
        if not all((work / f"decode_{s}_epoch-{epoch}" / "result.json").exists() for s in ("test", "heldout")):
            subprocess.run(["ds2", "decode", str(work), "--checkpoint", str(checkpoint), "--name", f"epoch-{epoch}",
                            *sets], check=True, env=venv_env(), stdout=subprocess.DEVNULL)
        test, held = (rates(work / f"decode_{s}_epoch-{epoch}")[0] for s in ("test", "heldout"))
        rows.append(f"| {epoch} | {entry['step']} | {entry['train_loss']:.3f} | {100 * entry['dev_cer']:.2f} "
                    f"| {test:.2f} | {held:.2f} |")
    prepare = (recipe / "data" / ".done" / "stage1.prepare").read_text().splitlines()[0]
    train = (recipe / "exp" / ".done" / f"stage6.train.{exp.name}").read_text().splitlines()[0]
    results = recipe / "RESULTS.md"
    made = re.search(r"^- git: `([^`]+)`", results.read_text(), re.M) if results.exists() else None
    return [
        CURVE_TITLE,
        "",
        "The configuration chosen for the demo at its full budget (not the budget of the tables above): "
        "each epoch's checkpoint decoded greedily; dev is the training log's (the sentences and voices of "
        "test's kind that pick best.pt).",
        "",
        "| epoch | step | train loss | dev %CER | test %CER | heldout %CER |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"- corpus: `{prepare.strip()}`",
        f"- training: `{train.strip()}`",
        f"- git named by the run's RESULTS.md (its last stage 9): `{made.group(1) if made else '?'}`",
        "",
    ]


def kept_curve(table: Path) -> list[str]:
    """The CURVE_TITLE section of a table written before (a run without --curve keeps it)."""
    text = table.read_text() if table and table.exists() else ""
    start = text.find(CURVE_TITLE)
    if start < 0:
        return []
    end = text.find("\n- git of this table", start)
    return text[start:end].rstrip("\n").splitlines() + [""]


def kept_rows(table: Path) -> dict[str, str]:
    """The rows of a table written before, by name, and its CPU line under "CPU": a run of some rows
    (--rows) keeps the others as they were measured (each row names its commit)."""
    text = table.read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| ([\w-]+) \|.*\|$", text, re.M)
            if m.group(1) not in ("row", "mix") and set(m.group(1)) != {"-"}}
    cpu = re.search(r"^- CPU: (.*?)(?: \(rows .*)?$", text, re.M)
    return {**rows, "CPU": cpu.group(1) if cpu else "unknown CPU"} if rows else {}


def logged_minutes(log: Path) -> float:
    """Minutes from the first to the last time stamp of a row's log (its stages; a re-run that
    skips them adds only seconds)."""
    stamps = [datetime.strptime(m.group(0), "%Y-%m-%d %H:%M:%S")
              for m in re.finditer(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", log.read_text(), re.M)]
    return (max(stamps) - min(stamps)).total_seconds() / 60


def torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


if __name__ == "__main__":
    main()
