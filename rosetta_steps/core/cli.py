"""One-line user errors and a clean exit code for the step commands.

Every step module has a `main(argv)`; the library raises `UserError` for bad input, and `run`
turns that into a single line on stderr and exit status 2, never a traceback. Run by the
workflow, a step that takes over a minute says on the console where its progress is. The
options the steps share are in `options`.
"""

from __future__ import annotations

import os
import sys
import threading
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
    timer = _progress_note(prog)
    try:
        main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no output was written", file=sys.stderr)
        return 130
    finally:
        if timer is not None:
            timer.cancel()
    return 0


def _progress_note(prog: str) -> threading.Timer | None:
    """When the workflow runs a step (its shell sets ROSETTA_LOG to the job's log, where the
    step's output goes, and passes the console as file descriptor 3), a timer that tells the
    console where the progress is once the step has run for ROSETTA_NOTE_AFTER seconds (60)."""
    log = os.environ.pop("ROSETTA_LOG", None)  # popped: no child process inherits it
    if not log:
        return None
    try:
        console = os.dup(3)
        after = float(os.environ.get("ROSETTA_NOTE_AFTER", "60"))
    except (OSError, ValueError):
        return None
    note = f"{prog}: still running after {after:g} s; its progress is in {log}\n"
    timer = threading.Timer(after, os.write, (console, note.encode(errors="replace")))
    timer.daemon = True
    timer.start()
    return timer
