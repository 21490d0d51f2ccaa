"""Shared plumbing for the step commands: one-line user errors and a clean exit code.

Every step module has a `main(argv)` that raises `UserError` for bad input; `run` turns that
into a single line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do."""


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Call a step's `main`, reporting a `UserError` as one line; return the exit status."""
    module = main.__module__
    if module == "__main__":  # run with `python -m`: name the module, not "__main__"
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else "rosetta_steps"
    prog = module.removesuffix(".__main__")
    try:
        main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0


def parse_weights(items: Sequence[str] | None) -> dict[str, str]:
    """Repeated `--weights NAME=PATH` options as {model name: weights path}."""
    out = {}
    for item in items or []:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise UserError(f"--weights takes NAME=PATH, got {item!r}")
        out[model] = path
    return out
