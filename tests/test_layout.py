"""The package's layout: steps on top and nothing imports them, library subpackages in layers
that only import downwards, no import cycles, one name per concept, files readable at once."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rosetta_steps"
# Library subpackages by layer: a module may import its own subpackage and lower layers only.
LAYERS = {"core": 0, "models": 1, "mining": 2, "pages": 3, "inversion": 3, "training": 3}
STEP = 4
MAX_LINES = 350


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that `name` imports (anywhere in the file), as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in known and m != name}


def layer(name: str) -> int | None:
    """A module's layer; None for the package itself and subpackages' __init__."""
    parts = name.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in LAYERS:
        return STEP if parts[-1] == "__main__" else LAYERS[parts[1]]
    return STEP


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_steps_are_leaves(graph):
    steps = {m for m in graph if layer(m) == STEP}
    assert {m.rsplit(".", 1)[1] for m in steps} >= {
        "sample", "match", "reduce", "bestbuddies", "rosetta", "dictionary", "pairwise",
        "invert", "edit", "neurons", "ood", "samplesheet", "train", "__main__"}
    for step in steps:
        source = modules()[step].read_text()
        assert "def main(argv" in source and 'if __name__ == "__main__":' in source, step
    importers = {m: sorted(i & steps) for m, i in graph.items() if i & steps}
    assert importers == {}


def test_library_imports_only_downwards(graph):
    upward = []
    for module, targets in graph.items():
        for target in targets:
            mine, theirs = layer(module), layer(target)
            if mine is None or theirs is None or mine == STEP:
                continue
            same_package = module.split(".")[1] == target.split(".")[1]
            if theirs > mine or (theirs == mine and not same_package):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles(graph):
    visiting, done, cycles = set(), set(), []

    def visit(module: str, path: list[str]) -> None:
        if module in visiting:
            cycles.append(" -> ".join(path[path.index(module):] + [module]))
            return
        if module in done:
            return
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_one_name_per_concept():
    """No two modules whose names differ by a suffix (edit/edits, stylegan2/stylegan2_formats)."""
    names = sorted({p.stem for p in PACKAGE.rglob("*.py") if not p.stem.startswith("__")})
    clashes = [(a, b) for a in names for b in names
               if a != b and (b.startswith(f"{a}_") or b == f"{a}s")]
    assert clashes == []


def test_modules_are_small_and_say_what_they_are_for():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert len(source.splitlines()) < MAX_LINES, path
        assert ast.get_docstring(ast.parse(source)), f"{path} has no module docstring"


STEPS = ["sample", "match", "reduce", "bestbuddies", "rosetta", "dictionary", "pairwise",
         "invert", "edit", "neurons", "ood", "samplesheet", "train", "models"]


@pytest.mark.parametrize("step", STEPS)
def test_every_step_answers_help(step, capsys):
    module = "rosetta_steps.models.__main__" if step == "models" else f"rosetta_steps.{step}"
    with pytest.raises(SystemExit) as done:
        importlib.import_module(module).main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: rosetta {step}")


def test_the_public_api_keeps_working():
    import rosetta_steps
    from rosetta_steps import CorrelationAccumulator, best_buddies
    from rosetta_steps.bestbuddies import best_buddies as reexported
    from rosetta_steps.mining.buddies import best_buddies as defined
    from rosetta_steps.mining.correlation import CorrelationAccumulator as accumulator

    assert best_buddies is reexported is defined and CorrelationAccumulator is accumulator
    with pytest.raises(AttributeError):
        rosetta_steps.nothing_here  # noqa: B018
