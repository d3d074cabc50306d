"""docs/configuration.md is generated from the config dataclasses (tools/config_doc.py): it must be
current, name every key `resolve_config` accepts, and its defaults must read back as the defaults."""

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from ds2.config import resolve_config

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"


def _load(name: str, path: Path):
    """Import the file `path` as module `name` (registered: its dataclasses need to find it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _generator():
    return _load("config_doc", ROOT / "tools" / "config_doc.py")


def _accepted_keys(obj, where="") -> list[str]:
    """Every section.key that resolve_config takes from a YAML file or --set."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _accepted_keys(value, f"{where}{f.name}.")
        else:
            keys.append(f"{where}{f.name}")
    return keys


def test_page_is_what_the_generator_writes():
    gen = _generator()
    assert PAGE.read_text() == gen.render(), f"docs/configuration.md is stale: run {gen.COMMAND}"
    assert gen.main(["--check"]) == 0


def test_every_accepted_key_is_documented_with_help():
    page = PAGE.read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \| .*\| (.*) \|$", page, re.M))
    accepted = _accepted_keys(resolve_config())
    assert accepted, "no keys found"
    assert set(rows) == set(accepted)
    undocumented = [key for key in accepted if not rows[key].strip()]
    assert not undocumented, f"keys without a comment in their dataclass: {undocumented}"


def test_documented_defaults_are_the_defaults():
    """Each row's default, given back through --set, changes nothing (so the page spells them right)."""
    gen = _generator()
    overrides = [f"{section}.{key.name}={key.default}" for section, cls in gen.sections() for key in gen.keys_of(cls)]
    assert resolve_config(None, overrides) == resolve_config()


@pytest.mark.parametrize("source, expected", [
    ("    x: int = 1  # one\n", ("one", "", False)),
    ("    # the x\n    # of it\n    x: int = 1\n", ("the x of it", "", True)),
    ("    # group\n    x: int = 1  # one\n", ("one", "group", False)),
    ("    # not x's\n\n    x: int = 1\n", ("", "", False)),
])
def test_comment_rules(tmp_path, monkeypatch, source, expected):
    path = tmp_path / "demo_config.py"
    path.write_text("from dataclasses import dataclass\n\n\n@dataclass\nclass Demo:\n" + source)
    monkeypatch.delitem(sys.modules, "demo_config", raising=False)
    module = _load("demo_config", path)
    monkeypatch.setitem(sys.modules, "demo_config", module)
    (key,) = _generator().keys_of(module.Demo)
    assert (key.help, key.note, key.help_above) == expected
    assert key.default == "1" and key.type == "int"
