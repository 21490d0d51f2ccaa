"""The `rosetta` command, as the console script and as `python -m rosetta_steps`: it lists the
steps it finds with their gists, runs a step with the arguments given (`rosetta <step> ...`
is `python -m rosetta_steps.<step> ...`), and refuses an unknown step in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"console script": [str(Path(sys.executable).parent / "rosetta")],
            "python -m": [sys.executable, "-m", "rosetta_steps"]}


def rosetta(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMANDS[command], *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "100"}, timeout=300)


def step_files() -> set[str]:
    """The steps as the package's files say: top-level modules with a main, and models."""
    return {path.stem for path in (ROOT / "rosetta_steps").glob("*.py")
            if not path.stem.startswith("_") and "\ndef main(" in path.read_text()} | {"models"}


def test_the_console_script_is_installed():
    assert Path(COMMANDS["console script"][0]).is_file(), \
        "no .venv/bin/rosetta: the project's install predates [project.scripts]"


@pytest.mark.parametrize("command", COMMANDS)
def test_it_lists_every_step_with_its_gist(command):
    done = rosetta(command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: rosetta <step> [args...]\n")
    listing = done.stdout.split("\nsteps:\n")[1].splitlines()
    listed = {line.split()[0] for line in listing if line[2] != " "}
    assert listed == step_files()
    assert {"match", "reduce", "bestbuddies", "rosetta", "dictionary", "train"} <= listed
    reduce = next(line for line in listing if line.startswith("  reduce "))
    assert "correlation shards of one (G, D) pair into its match store" in reduce
    assert "python -m" not in reduce  # the docstring's opening names the step; the list does
    if command == "console script":
        assert rosetta(command).stdout == done.stdout  # bare `rosetta` lists them too


@pytest.mark.parametrize("command", COMMANDS)
def test_a_step_answers_its_own_help_as_the_command_typed(command):
    done = rosetta(command, "reduce", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rosetta reduce [-h]")
    assert "--null-out" in done.stdout and "usage: python -m" not in done.stdout


def test_a_step_gets_the_arguments_given():
    done = rosetta("console script", "reduce", "--images", "3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        "rosetta reduce: error: the following arguments are required: shards, --out")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_step_is_one_line(command):
    done = rosetta(command, "nope", "--help")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"rosetta: error: unknown step 'nope'; steps: "
                           f"{', '.join(sorted(step_files()))}\n")


def _logged(folder: Path, after: float, sleep: float, console: bool = True
            ) -> tuple[str, str, float]:
    """A step that sleeps, run as the workflow's rules run one: output to its log, the console
    as descriptor 3 (unless `console` is false), ROSETTA_LOG naming the log. (console, log,
    seconds)."""
    code = ("import time; from rosetta_steps.core.cli import run; "
            f"raise SystemExit(run(lambda argv: time.sleep({sleep})))")
    command = (f"ROSETTA_LOG=job.log ROSETTA_NOTE_AFTER={after} {sys.executable} -c '{code}'"
               + (" 3>&2" if console else "") + " > job.log 2>&1")
    t0 = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr, (folder / "job.log").read_text(), time.perf_counter() - t0


def test_a_step_run_by_the_workflow_says_on_the_console_where_its_log_is_once_slow(tmp_path):
    console, log, _ = _logged(tmp_path, after=0.2, sleep=1.5)
    assert console == ("rosetta rosetta_steps: still running after 0.2 s; its progress is in "
                       "job.log\n") and log == ""
    console, log, seconds = _logged(tmp_path, after=30, sleep=0.1)  # done before it is due
    assert console == log == "" and seconds < 20  # and the timer does not hold the exit
    assert _logged(tmp_path, after=0.2, sleep=1, console=False)[:2] == ("", "")  # no console
