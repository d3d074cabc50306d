"""RESULTS.md of a recipe, generated from its decoding folders and stage markers."""

from __future__ import annotations

import json
import logging
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ds2.files import AVERAGE_REPORT, AVERAGED, BEST, checkpoint_dir

log = logging.getLogger(__name__)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_description(path: Path, ignore: Path | None = None) -> str:
    """Commit hash of the checkout holding `path`, with `-dirty` when it has changes; a change to
    `ignore` (the RESULTS.md being rewritten: stage 9 of a second model rewrites the first one's)
    does not count."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout

        head = git("rev-parse", "--short=12", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
        if ignore is not None:
            top = Path(git("rev-parse", "--show-toplevel").strip()).resolve()
            skip = Path(ignore).resolve()
            changed = [c for c in changed if (top / c).resolve() != skip]
        return head + ("-dirty" if changed else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown (not a git checkout)"


def collect(exp_root: Path) -> list[dict]:
    """One row per decoding folder `exp_root/<tag>/decode_<set>_<method>/`, read from its
    result.json (set and method are data there: a set name such as `test_clean` cannot be
    split off the folder's name). A folder without result.json is left out with a warning."""
    from ds2.score import RESULT_FILE, read_result

    rows = []
    for folder in sorted(p for p in exp_root.glob("*/decode_*") if p.is_dir()):
        result = folder / RESULT_FILE
        if not result.is_file():
            log.warning("%s has no %s (decoded by an older ds2, or the decoding did not finish): left out of "
                        "RESULTS.md; decode that set again", folder, RESULT_FILE)
            continue
        r = read_result(result)
        # a decoding named otherwise (`ds2 decode --name hlg-word`) is a row of its own under its name
        rows.append({"tag": folder.parent.name, "set": r["set"], "method": r.get("name") or r["method"],
                     "rtf": r["rtf"],
                     "settings": r["settings"], "cuts": r["cuts"], "checkpoint": r["checkpoint"],
                     "WER": r["WER"], "CER": r["CER"], "primary": r.get("primary", "WER"),
                     "homophones": r.get("homophones")})
    return rows


def scoring_notes(rows: list[dict]) -> list[str]:
    """One line per decoding whose score includes cuts with references the tokenizer cannot
    spell or cuts that could not be decoded (from the `cuts` counts of its result.json)."""
    return [f"- {r['tag']} {r['method']} {r['set']}: {r['cuts']['summary'].splitlines()[0].removeprefix('# ')}"
            for r in rows if r["cuts"]["unspellable"] or r["cuts"]["undecodable"]]


def homophone_lines(rows: list[dict], sets: list[str], keys: list[tuple[str, str]]) -> list[str]:
    """One line per Mandarin decoding: the share of its substitutions that are homophones."""
    from ds2.homophones import describe

    by_key = {(r["tag"], r["method"], r["set"]): r for r in rows}
    return [f"- {tag} {method} {s}: {describe(by_key[(tag, method, s)]['homophones'])}"
            for tag, method in keys for s in sets if (by_key.get((tag, method, s)) or {}).get("homophones")]


def set_order(sets) -> list[str]:
    """Dev sets (names starting with "dev") first, then the others, each group alphabetically."""
    return sorted(set(sets), key=lambda s: (not s.startswith("dev"), s))


def _method_order(method: str) -> tuple[int, str]:
    from ds2.decode.methods import METHODS

    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _settings_cell(settings: dict) -> str:
    return " ".join(f"`{k}={v}`" for k, v in settings.items())


def decoded_dev_cer(epochs: list[dict], averaged: dict | None) -> tuple[float, str]:
    """(dev CER as a fraction, which checkpoint) of the checkpoint `ds2 decode EXP` uses: the one
    `averaged` (checkpoints/averaged.json) says `ds2 average` chose, else best.pt, the best of
    `epochs` (log/history.json)."""
    best = min(epochs, key=lambda e: e["dev_cer"])
    best_pt = f"{BEST}, epoch {best['epoch'] + 1}"
    if averaged is None:
        return best["dev_cer"], best_pt
    if averaged["chosen"] == AVERAGED:
        return averaged["dev_cer_averaged"], f"average of {', '.join(averaged['averaged'])}"
    return averaged["dev_cer_best"], best_pt


def training_summary(exp_dir: Path) -> str:
    """The training lines of RESULTS.md: epochs, steps, time, and the dev CER of the checkpoint
    decoding uses (so it is the greedy dev %CER of the table, the same CER by definition)."""
    history_file = exp_dir / "log" / "history.json"
    if not history_file.exists():
        return ""
    epochs = json.loads(history_file.read_text())["epochs"]
    if not epochs:
        return ""
    averaged_file = checkpoint_dir(exp_dir) / AVERAGE_REPORT
    a = json.loads(averaged_file.read_text()) if averaged_file.is_file() else None
    minutes = sum(e["seconds"] for e in epochs) / 60
    cer, which = decoded_dev_cer(epochs, a)
    dev_cers = [f"{100 * e['dev_cer']:.2f}" for e in epochs]
    by_epoch = f"- by epoch: dev CER {' / '.join(dev_cers)} %"
    if all("train_loss" in e for e in epochs):  # ds2 train writes it; a history from elsewhere may lack it
        by_epoch += ", training loss " + " / ".join(f"{e['train_loss']:.3f}" for e in epochs)
    lines = [f"- `{exp_dir.name}`: {len(epochs)} epochs, {epochs[-1]['step']} steps, {minutes:.1f} min of "
             f"training; best dev CER {100 * cer:.2f}% ({which}); curves: `exp/{exp_dir.name}/curves.png`",
             by_epoch]
    if a is not None:
        lines.append(f"- decoded with `{a['chosen']}`: dev CER of the average of {', '.join(a['averaged'])} "
                     f"{100 * a['dev_cer_averaged']:.2f}%, of {BEST} {100 * a['dev_cer_best']:.2f}% (`ds2 average`)")
    cfg = exp_dir / "config.yaml"
    if cfg.exists():
        lines += ["", f"<details><summary>exp/{exp_dir.name}/config.yaml</summary>", "", "```yaml",
                  cfg.read_text().strip(), "```", "", "</details>"]
    return "\n".join(lines)


def stage_commands(recipe_dir: Path) -> list[str]:
    """Commands recorded in the stage markers (`data/.done/*`, `exp/.done/*`), in stage order."""
    markers = list((recipe_dir / "data" / ".done").glob("*")) + list((recipe_dir / "exp" / ".done").glob("*"))

    def stage_number(p: Path) -> int:
        head = p.name.split(".", 1)[0].removeprefix("stage")
        return int(head) if head.isdigit() else 999

    out = []
    for marker in sorted(markers, key=lambda p: (stage_number(p), p.name)):
        out += [f"# {marker.name}"] + marker.read_text().strip().splitlines()
    return out


def write_results(recipe_dir: str | Path, output: str | Path | None = None, title: str | None = None) -> str:
    """Render RESULTS.md for `recipe_dir` (its exp/ and markers); write it to `output` if given."""
    recipe_dir = Path(recipe_dir).resolve()
    exp_root = recipe_dir / "exp"
    rows = collect(exp_root)
    if not rows:
        raise FileNotFoundError(f"no decoding results under {exp_root}/*/decode_*/result.json (run the decode stage)")
    sets = set_order(r["set"] for r in rows)
    keys = sorted({(r["tag"], r["method"]) for r in rows}, key=lambda k: (k[0], _method_order(k[1])))
    by_key = {(r["tag"], r["method"], r["set"]): r for r in rows}
    # Text without word boundaries (Mandarin) leads with CER; its WER is the share of sentences with
    # an error (each sentence is one "word"), shown as %SER.
    by_chars = all(r["primary"] == "CER" for r in rows)
    rates = ("CER", "SER") if by_chars else ("WER", "CER")
    table = ["| experiment | method | " + " | ".join(f"{s} %{rates[0]} | {s} %{rates[1]}" for s in sets) + " |",
             "| --- | --- | " + " | ".join("---: | ---:" for _ in sets) + " |"]
    details, settings = [], []
    for tag, method in keys:
        cells = []
        for s in sets:
            row = by_key.get((tag, method, s))
            if row is None:
                cells += ["", ""]
                continue
            if by_chars:
                cells += [f"{row['CER'].rate:.2f}", f"{row['WER'].rate:.2f}"]
                details.append(f"| {tag} | {method} | {s} | {row['CER'].line('CER')} | "
                               f"{row['WER'].line('SER')} |")
            else:
                cells += [f"{row['WER'].rate:.2f}", f"{row['CER'].rate:.2f}"]
                details.append(f"| {tag} | {method} | {s} | {row['WER'].line('WER')} | {row['CER'].line('CER')} |")
        # the settings and speed of the last set this method decoded (a test set when there is one)
        last = next(by_key[(tag, method, s)] for s in reversed(sets) if (tag, method, s) in by_key)
        settings.append(f"| {tag} | {method} | {last['set']} | {last['rtf']:.4f} | "
                        f"{_settings_cell(last['settings'])} |")
        table.append(f"| {tag} | {method} | " + " | ".join(cells) + " |")
    tags = sorted({r["tag"] for r in rows})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        f"# {title or 'Results of egs/' + recipe_dir.name}",
        "",
        f"Generated by `ds2 results` on {now} from `exp/*/decode_*/result.json`.",
        "",
        "## Character and sentence error rates" if by_chars else "## Word and character error rates",
        "",
        *table,
        "",
        *(["%CER counts characters, spaces aside; %SER is the share of sentences with an error (the %WER of "
           "text without word boundaries, where a sentence is one word).", ""] if by_chars else []),
        *(["Substitutions that are homophones (pypinyin readings of the reference and recognised characters "
           "agree), what the acoustics alone cannot tell apart:", "", *homophones, ""]
          if (homophones := homophone_lines(rows, sets, keys)) else []),
        "Errors in detail (insertions, deletions, substitutions):",
        "",
        "| experiment | method | set | characters | sentences |" if by_chars else
        "| experiment | method | set | words | characters |",
        "| --- | --- | --- | --- | --- |",
        *details,
        "",
        *(["Every cut is scored; these decodings include cuts scored apart from the others:", "",
           *notes, ""] if (notes := scoring_notes(rows)) else []),
        "Search settings (weights tuned on dev by `ds2 tune`) and the search's real-time factor per core "
        "(the acoustic model excluded) on the set named:",
        "",
        "| experiment | method | set | RTF per core | settings |",
        "| --- | --- | --- | ---: | --- |",
        *settings,
        "",
        "## Training",
        "",
        *[s for s in (training_summary(exp_root / t) for t in tags) if s],
        "",
        "## Environment",
        "",
        f"- git: `{git_description(recipe_dir, ignore=output)}`",
        f"- ds2 {_version('ds2')}, torch {_version('torch')}, lhotse {_version('lhotse')}, "
        f"kaldialign {_version('kaldialign')}, kenlm {_version('kenlm')}, kaldifst {_version('kaldifst')}, "
        f"kaldilm {_version('kaldilm')}, kaldi-decoder {_version('kaldi-decoder')}, Python {platform.python_version()}",
        f"- machine: {cpu_description()}, {_cpu_count()} cores; {platform.machine()}, "
        f"{platform.system()} {platform.release()}",
        "",
        "## Commands",
        "",
        "Recorded by each stage of `run.sh` in its `.done` marker:",
        "",
        "```sh",
        *stage_commands(recipe_dir),
        "```",
        "",
    ]
    rendered = "\n".join(text)
    if output is not None:
        Path(output).write_text(rendered)
    return rendered


def cpu_description() -> str:
    """The CPU's model name and the widest of the instruction sets that decide ds2's speed, e.g.
    "Intel(R) Xeon(R) Processor (AMX, AVX-512-BF16)": bfloat16 is native only with AVX-512-BF16 or
    AMX (docs/training.md, "Precision"); on AVX2 alone it is emulated."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    isa = [label for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512-BF16")) if flag in flags]
    if not isa:
        isa = ["AVX-512"] if "avx512f" in flags else ["AVX2"] if "avx2" in flags else []
    return f"{name} ({', '.join(isa)})" if isa else name


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
