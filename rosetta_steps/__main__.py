"""`rosetta <step> [args...]`: every step as one command, the same as `python -m
rosetta_steps.<step> [args...]` (and as `python -m rosetta_steps <step> [args...]`).

`rosetta` or `rosetta --help` lists the steps, each with the gist of its module docstring;
`rosetta <step> --help` is the step's own help. The steps are found rather than listed: the
package's top-level modules that define `main`, and its subpackages with a `__main__` that
does (`models`). Only the step asked for is imported: most of them import torch.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from .core.cli import run

PROG = "rosetta"
PACKAGE = Path(__file__).resolve().parent
USAGE = f"usage: {PROG} <step> [args...]"


def _defines_main(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def steps() -> dict[str, Path]:
    """Every step's name -> its source file, sorted by name, found without importing any."""
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    modules |= {path.parent.name: path for path in PACKAGE.glob("*/__main__.py")}
    return {name: path for name, path in sorted(modules.items())
            if not name.startswith("_") and _defines_main(ast.parse(path.read_text()))}


def module_of(step: str, path: Path) -> str:
    """The dotted module a step runs as: `rosetta_steps.<step>[.__main__]`."""
    return f"{__package__}.{step}" + (
        ".__main__" if path.name == "__main__.py" else "")


def summary(path: Path) -> str:
    """A step's gist: the first sentence of its module docstring (a period or colon outside
    parentheses ends it), without the `python -m rosetta_steps.<step>`: that opens it."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    text = re.sub(r"^`python -m [^`]*`: ", "", " ".join(doc.split("\n\n")[0].split()))
    depth = 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and char in ".:" and text[i + 1:i + 2] in (" ", ""):
            return text[:i]
    return text


def overview(found: dict[str, Path]) -> str:
    """`rosetta --help`: what the command does and every step with its gist, wrapped to the
    terminal's width as argparse wraps help."""
    width = max(shutil.get_terminal_size().columns - 2, 40)
    pad = max(map(len, found)) + 4
    intro = (f"Run one step of the Rosetta Neurons pipeline: `{PROG} <step> ...` is `python -m "
             f"{PACKAGE.name}.<step> ...`. `{PROG} <step> --help` shows the step's options.")
    lines = [USAGE, "", *textwrap.wrap(intro, width), "", "steps:"]
    for name, path in found.items():
        lines += textwrap.wrap(summary(path), width, initial_indent=f"  {name:<{pad - 2}}",
                               subsequent_indent=" " * pad)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`rosetta [--help] | rosetta <step> [args...]`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    found = steps()
    if not args or args[0] in ("-h", "--help"):
        print(overview(found))
        return 0
    step, rest = args[0], args[1:]
    if step not in found:
        print(f"{PROG}: error: unknown step {step!r}; steps: {', '.join(found)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(module_of(step, found[step]))
    return run(module.main, rest)


if __name__ == "__main__":
    raise SystemExit(main())
