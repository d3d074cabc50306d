"""RESULTS.md of a recipe, generated from its decoding folders and stage markers."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ds2.score import parse_wer_file


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_description(path: Path) -> str:
    """Commit hash of the checkout holding `path`, with `-dirty` when it has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=path, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown (not a git checkout)"


def collect(exp_root: Path) -> list[dict]:
    """One row per decoding folder `exp_root/<tag>/decode_<set>_<method>/wer.txt`."""
    rows = []
    for wer_file in sorted(exp_root.glob("*/decode_*_*/wer.txt")):
        tag = wer_file.parent.parent.name
        _, set_name, method = wer_file.parent.name.split("_", 2)
        rates = parse_wer_file(wer_file)
        lines = wer_file.read_text().splitlines()
        header = next((ln[1:].strip() for ln in lines if ln.startswith("#")), "")
        cuts = next((ln[1:].strip() for ln in lines if ln.startswith("# cuts:")), "")
        rows.append({"tag": tag, "set": set_name, "method": method, "header": header, "cuts": cuts, **rates})
    return rows


_SCORED_APART = re.compile(r"cannot spell: (\d+) .*could not be decoded: (\d+) ")


def scoring_notes(rows: list[dict]) -> list[str]:
    """One line per decoding whose score includes cuts with references the tokenizer cannot
    spell or cuts that could not be decoded (from the `# cuts:` line of its wer.txt)."""
    notes = []
    for r in rows:
        m = _SCORED_APART.search(r.get("cuts", ""))
        if m and (int(m.group(1)) or int(m.group(2))):
            notes.append(f"- {r['tag']} {r['method']} {r['set']}: {r['cuts']}")
    return notes


def _method_order(method: str) -> tuple[int, str]:
    from ds2.decode.methods import METHODS

    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _header_fields(header: str) -> tuple[str, str]:
    """(RTF, the method's options) of a wer.txt header `set method checkpoint=... RTF=... key=value ...`."""
    fields = header.split()[2:]
    rtf = next((f.split("=", 1)[1] for f in fields if f.startswith("RTF=")), "")
    options = [f for f in fields if "=" in f and not f.startswith(("RTF=", "checkpoint=", "utterances="))]
    return rtf, " ".join(f"`{o}`" for o in options)


def training_summary(exp_dir: Path) -> str:
    history_file = exp_dir / "log" / "history.json"
    if not history_file.exists():
        return ""
    epochs = json.loads(history_file.read_text())["epochs"]
    if not epochs:
        return ""
    minutes = sum(e["seconds"] for e in epochs) / 60
    best = min(epochs, key=lambda e: e["dev_cer"])
    lines = [f"- `{exp_dir.name}`: {len(epochs)} epochs, {epochs[-1]['step']} steps, {minutes:.1f} min of "
             f"training; best dev CER {100 * best['dev_cer']:.2f}% (epoch {best['epoch'] + 1}); "
             f"curves: `exp/{exp_dir.name}/curves.png`"]
    averaged = exp_dir / "checkpoints" / "averaged.json"
    if averaged.exists():
        a = json.loads(averaged.read_text())
        lines.append(f"- decoded with `{a['chosen']}`: dev CER of the average of {', '.join(a['averaged'])} "
                     f"{100 * a['dev_cer_averaged']:.2f}%, of best.pt {100 * a['dev_cer_best']:.2f}% (`ds2 average`)")
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
        raise FileNotFoundError(f"no decoding results under {exp_root}/*/decode_*_*/wer.txt (run the decode stage)")
    sets = sorted({r["set"] for r in rows}, key=lambda s: (s != "dev", s))
    keys = sorted({(r["tag"], r["method"]) for r in rows}, key=lambda k: (k[0], _method_order(k[1])))
    table = ["| experiment | method | " + " | ".join(f"{s} %WER | {s} %CER" for s in sets) + " |",
             "| --- | --- | " + " | ".join("---: | ---:" for _ in sets) + " |"]
    details, settings = [], []
    for tag, method in keys:
        cells = []
        for s in sets:
            row = next((r for r in rows if (r["tag"], r["method"], r["set"]) == (tag, method, s)), None)
            if row is None:
                cells += ["", ""]
                continue
            cells += [f"{row['WER'].rate:.2f}", f"{row['CER'].rate:.2f}"]
            details.append(f"| {tag} | {method} | {s} | {row['WER'].line('WER')} | {row['CER'].line('CER')} |")
            if s == sets[-1]:
                rtf, options = _header_fields(row["header"])
                settings.append(f"| {tag} | {method} | {rtf} | {options} |")
        table.append(f"| {tag} | {method} | " + " | ".join(cells) + " |")
    tags = sorted({r["tag"] for r in rows})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        f"# {title or 'Results of egs/' + recipe_dir.name}",
        "",
        f"Generated by `ds2 results` on {now} from `exp/*/decode_*_*/wer.txt`.",
        "",
        "## Word and character error rates",
        "",
        *table,
        "",
        "Errors in detail (insertions, deletions, substitutions):",
        "",
        "| experiment | method | set | words | characters |",
        "| --- | --- | --- | --- | --- |",
        *details,
        "",
        *(["Every cut is scored; these decodings include cuts scored apart from the others:", "",
           *notes, ""] if (notes := scoring_notes(rows)) else []),
        f"Search settings (weights tuned on dev by `ds2 tune`) and the search's real-time factor per core "
        f"on {sets[-1]} (the acoustic model excluded):",
        "",
        "| experiment | method | RTF per core | settings |",
        "| --- | --- | ---: | --- |",
        *settings,
        "",
        "## Training",
        "",
        *[s for s in (training_summary(exp_root / t) for t in tags) if s],
        "",
        "## Environment",
        "",
        f"- git: `{git_description(recipe_dir)}`",
        f"- ds2 {_version('ds2')}, torch {_version('torch')}, lhotse {_version('lhotse')}, "
        f"kaldialign {_version('kaldialign')}, kenlm {_version('kenlm')}, kaldifst {_version('kaldifst')}, "
        f"kaldilm {_version('kaldilm')}, kaldi-decoder {_version('kaldi-decoder')}, Python {platform.python_version()}",
        f"- machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"{_cpu_count()} CPU cores",
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


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
