"""The documentation stays true: README.md and docs/*.md link only to files of the repository, name
only `ds2` verbs that exist, README.md stays a front door (200 lines at most), no page reads like a
lab notebook (commit hashes, "an earlier run"), docs/design.md's layout is the tree, and every
test docs/contributing.md names exists. Read from the files and from the click group; nothing is run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from ds2.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]

FENCE = re.compile(r"^( {0,3})(```|~~~).*?^\1\2[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)


def without_code_blocks(text: str) -> str:
    """The text with its fenced code blocks blanked (line count kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def code_blocks(text: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(text)]


# [text](target "title"), ![alt](target), and reference definitions `[id]: target`
INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)


def links_of(text: str) -> list[str]:
    prose = without_code_blocks(text)
    prose = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), prose)
    return [m.group(1) for pattern in (INLINE_LINK, REFERENCE_LINK, HTML_LINK) for m in pattern.finditer(prose)]


def is_external(target: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", target, re.I))  # http:, https:, mailto:, ...


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_relative_link_resolves_inside_the_repository(page):
    text = page.read_text()
    bad = []
    for target in links_of(text):
        if not target or is_external(target):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:  # an anchor of the same page
            continue
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(ROOT):
            bad.append(f"{target}: outside the repository (dead in every clone)")
        elif not resolved.exists():
            bad.append(f"{target}: no such file")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {(README.parent / t.split("#", 1)[0]).resolve() for t in links_of(README.read_text())
              if t and not is_external(t)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def cli_commands() -> dict[str, set[str] | None]:
    """verb -> the names of its subcommands (a group), or None (a command)."""
    ctx = click.Context(main)
    out = {}
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        out[name] = set(cmd.list_commands(click.Context(cmd))) if isinstance(cmd, click.Group) else None
    return out


# `ds2 <verb>` where ds2 is the command: at the start of a line or code span (after a `$ ` prompt),
# after `-m `, a path's `bin/`, a backquote, `(`, `$(`, `|`, `;` or `&&`; not `exp/ds2 ...` (a
# folder), not "what ds2 is" in a layout line, not `from ds2 import` (Python).
DS2_CALL = re.compile(r"(?:^\s*(?:\$\s+)?|-m\s+|bin/|`|\(|\|\s*|;\s*|&&\s*)ds2[ \t]+([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*))?")


def ds2_calls(text: str) -> list[tuple[str, str | None, str]]:
    """(verb, the word after it, the line) of every `ds2 <verb>` in the code blocks and code spans
    of `text` (prose may say "ds2 is ..."; commands are written as code)."""
    pieces = code_blocks(text) + [m.group(2) for m in INLINE_CODE.finditer(without_code_blocks(text))]
    calls = []
    for piece in pieces:
        for line in piece.splitlines():
            if re.match(r"\s*(?:from|import)\s+ds2\b", line):
                continue
            for m in DS2_CALL.finditer(line):
                calls.append((m.group(1), m.group(2), line.strip()))
    return calls


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_ds2_verb_named_exists(page):
    commands = cli_commands()
    bad = []
    for verb, sub, line in ds2_calls(page.read_text()):
        if verb not in commands:
            bad.append(f"`ds2 {verb}` is no verb of ds2 ({line})")
        elif commands[verb] is not None and sub is not None and sub not in commands[verb]:
            bad.append(f"`ds2 {verb} {sub}` is no subcommand of `ds2 {verb}` ({line})")
    assert not bad, f"{page.relative_to(ROOT)}:\n" + "\n".join(bad)


def test_the_verb_check_reads_what_it_should():
    text = ("Run `ds2 decode exp/ds2 --cuts x` and `ds2 lm graph data/lang`; ds2 is a toolkit.\n"
            "```sh\nds2 prepare librispeech x\ntorchrun -m ds2 train --x\n.venv/bin/ds2 tokens y\n"
            "$ ds2 serve exp  # (ds2 results)\ncp exp/ds2 out && ds2 average exp\n"
            "README.md   what ds2 is, the two commands\ncli/   `ds2 <verb>`: prepare\n```\n"
            "```python\nfrom ds2 import Transcriber\nimport ds2\n```\n")
    assert [(v, s) for v, s, _ in ds2_calls(text)] == [
        ("prepare", "librispeech"), ("train", None), ("tokens", "y"), ("serve", "exp"), ("results", None),
        ("average", "exp"), ("decode", "exp"), ("lm", "graph")]


def test_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


# a commit hash: 7 to 40 hex digits with at least one digit and one letter
HASH = re.compile(r"(?<![\w.-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w-])")
NOTEBOOK = re.compile(r"\bearlier runs?\b", re.I)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_commit_hash_and_no_earlier_run(page):
    """README.md: nowhere; docs/*.md: not in prose (a code block may hold a digest or a log line)."""
    text = page.read_text()
    checked = text if page == README else without_code_blocks(text)
    found = [(n + 1, m.group(0)) for n, line in enumerate(checked.splitlines())
             for m in list(HASH.finditer(line)) + list(NOTEBOOK.finditer(line))]
    assert not found, f"{page.relative_to(ROOT)}: {found}"


def test_the_hash_check_reads_what_it_should():
    assert HASH.findall("at fe952b0, 354b39d and 1cef554; 65798af3c0ffee00aa11bb22cc33dd44ee55ff66") == [
        "fe952b0", "354b39d", "1cef554", "65798af3c0ffee00aa11bb22cc33dd44ee55ff66"]
    assert HASH.findall("1234567 deadbeef 12.42 e2e abc123 x86_64 0x1f2e3d4c --seed-2a3b4c5") == []


def layout_paths() -> list[str]:
    """The paths of docs/design.md's layout block: one entry a line, two spaces of indent a level."""
    text = (ROOT / "docs/design.md").read_text()
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    block = code_blocks(section)[0].splitlines()[1:-1]
    paths, stack = [], []
    for line in block:
        indent = len(line) - len(line.lstrip(" "))
        name = line.split()[0]
        stack = stack[: indent // 2] + [name]
        paths.append("".join(stack))
    return paths


def test_design_md_layout_is_the_tree():
    listed = layout_paths()
    assert [p for p in listed if not (ROOT / p).exists()] == [], "listed in docs/design.md's layout, not in the tree"
    listed = {p.rstrip("/") for p in listed}
    package = ROOT / "ds2"
    units = [p for p in package.rglob("*") if (p.suffix in (".py", ".cpp") or (p.is_dir() and (p / "__init__.py").exists()))
             and "__pycache__" not in p.parts]
    # a package's __init__.py is told by the package's own line, unless it has a line of its own
    missing = sorted(str(p.relative_to(ROOT)) for p in units if str(p.relative_to(ROOT)) not in listed
                     and not (p.name == "__init__.py" and str(p.parent.relative_to(ROOT)) in listed))
    assert missing == [], "in the tree, not in docs/design.md's layout"
    recipes = [p for p in (ROOT / "egs").iterdir() if p.is_dir()]
    assert sorted(str(p.relative_to(ROOT)) for p in recipes if str(p.relative_to(ROOT)) not in listed) == []


def test_every_test_contributing_md_names_exists():
    text = (ROOT / "docs/contributing.md").read_text()
    named, current = [], None
    for m in re.finditer(r"`(?:(test_\w+\.py)(?:::(\w+))?|::(\w+))`", text):
        if m.group(1):
            current = m.group(1)
            named.append((current, m.group(2)))
        else:
            named.append((current, m.group(3)))
    assert len(named) > 50 and None not in {f for f, _ in named}
    bad = []
    for file, function in named:
        path = ROOT / "tests" / file
        if not path.exists():
            bad.append(file)
        elif function and function not in {n.name for n in ast.walk(ast.parse(path.read_text()))
                                           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}:
            bad.append(f"{file}::{function}")
    assert bad == []


def markdown_tables(text: str) -> list[tuple[int, list[list[str]]]]:
    """(line number of the header, rows of cells) of each pipe table in `text`, separator row left out."""
    tables, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]):
            start, rows = i, [cells(lines[i])]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            tables.append((start, rows))
        else:
            i += 1
    return tables


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def readme_results_tables() -> list[tuple[str, list[list[str]]]]:
    """(recipe, table) of each table under a README paragraph that links egs/<recipe>/RESULTS.md."""
    text = README.read_text()
    lines = text.splitlines()
    found = []
    for start, rows in markdown_tables(text):
        before = "\n".join(lines[max(0, start - 8):start])
        recipes = re.findall(r"\(egs/([\w-]+)/RESULTS\.md\)", before)
        if recipes:
            found.append((recipes[-1], rows))
    return found


def test_readme_results_are_the_figures_of_the_recipes_results_md():
    """Every figure of the README's results tables is the one its recipe's RESULTS.md holds (the
    first table: experiment, method, then '<set> %<measure>' columns): a RESULTS.md regenerated
    without the README (or the other way round) fails here. A README column is '[experiment]
    <set> %<measure>' (experiment ds2 when not named); a row's method is its first word."""
    tables = readme_results_tables()
    assert {recipe for recipe, _ in tables} >= {"synth", "synth_zh"}, tables
    for recipe, rows in tables:
        results = (ROOT / "egs" / recipe / "RESULTS.md").read_text()
        header, *body = markdown_tables(results)[0][1]
        assert header[:2] == ["experiment", "method"], header
        figures = {(row[0], row[1], column): row[i] for row in body for i, column in enumerate(header) if i >= 2}
        for row in rows[1:]:
            method = row[0].split()[0]
            for column, value in zip(rows[0][1:], row[1:]):
                words = column.split()
                experiment, measure = (words[0], " ".join(words[1:])) if len(words) == 3 else ("ds2", column)
                key = (experiment, method, measure)
                assert key in figures, f"README: {recipe} {key} is not in egs/{recipe}/RESULTS.md"
                assert figures[key] == value, (
                    f"README: {recipe} {experiment} {method} {measure} reads {value}, "
                    f"egs/{recipe}/RESULTS.md {figures[key]}")
