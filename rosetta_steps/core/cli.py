"""One-line user errors and a clean exit code for the step commands.

Every step module has a `main(argv)`; the library raises `UserError` for bad input, and `run`
turns that into a single line on stderr and exit status 2, never a traceback. The options
the steps share are in `options`.
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
    prog = "rosetta " + module.removesuffix(".__main__").removeprefix("rosetta_steps.")
    try:
        main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0
