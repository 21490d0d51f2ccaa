"""The docs' reference pages are what workflow/scripts/reference_pages.py writes now (whatever
the terminal's width), they cover every key of params.yaml and every step's help as the
`rosetta` command prints it, and every key of the params.yaml schema says what it does."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "workflow" / "scripts" / "reference_pages.py"
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "params.schema.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PAGES = ["docs/reference/configuration.md", "docs/reference/steps.md"]


def _script():
    spec = importlib.util.spec_from_file_location("reference_pages", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    """The pages as the script writes them, generated in a narrow terminal."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "37")
        return _script().pages()


def _unless_other_python(page: str) -> None:
    """argparse lays help out differently from one Python minor version to the next."""
    made = re.search(r"as Python (\d+\.\d+)'s argparse", (ROOT / page).read_text())
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made and made.group(1) != running:
        pytest.skip(f"{page} holds Python {made.group(1)}'s argparse layout; this is {running}")


@pytest.mark.parametrize("page", PAGES)
def test_the_committed_pages_are_current(page, fresh):
    _unless_other_python(page)
    assert (ROOT / page).read_text() == fresh[page], f"{page} is stale: run `make reference`"


def _undescribed(node: dict, path: str) -> list[str]:
    """Paths of the keys under `node` (a mapping's keys, its user-named entries, the forms an
    entry may take, the $defs) without a description."""
    children = {f"{path}.{k}": v for k, v in node.get("properties", {}).items()}
    children |= {f"{path}.$defs.{k}": v for k, v in node.get("$defs", {}).items()}
    if isinstance(node.get("additionalProperties"), dict):
        children[f"{path}.<name>"] = node["additionalProperties"]
    children |= {f"{path}.oneOf[{i}]": form for i, form in enumerate(node.get("oneOf", ()))
                 if "properties" in form}
    missing = []
    for where, child in children.items():
        if not str(child.get("description", "")).strip():
            missing.append(where)
        missing += _undescribed(child, where)
    return missing


def test_every_key_of_the_schema_says_what_it_does():
    assert _undescribed(SCHEMA, "params") == []
    assert len(_undescribed(SCHEMA | {"properties": {"x": {"type": "integer"}}}, "p")) == 1


def _paths(value: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(value, dict):
        return [path]
    return [path] * bool(path) + [p for k, v in value.items() for p in _paths(v, (*path, k))]


def _covers(heading: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(heading) == len(path) and all(
        h in (p, "<name>") for h, p in zip(heading, path, strict=True))


def test_the_configuration_page_has_every_key_of_params_yaml():
    page = (ROOT / PAGES[0]).read_text()
    headings = [tuple(h.split(".")) for h in re.findall(r"^#+ `([^`]+)`$", page, re.M)]
    missing = [".".join(path) for path in _paths(PARAMS)
               if not any(_covers(heading, path) for heading in headings)]
    assert missing == []
    assert "## `null`" in page and "### `dictionaries.<name>.discs`" in page


def test_the_steps_page_shows_what_the_command_prints():
    _unless_other_python(PAGES[1])
    page = (ROOT / PAGES[1]).read_text()
    shown = re.search(r"^## models\n.*?^```text\n(.*?)^```$", page, re.S | re.M).group(1)
    printed = subprocess.run([str(Path(sys.executable).parent / "rosetta"), "models", "--help"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "COLUMNS": "100"})
    assert printed.returncode == 0 and printed.stdout == shown
