"""The `rosetta` command, as the console script and as `python -m rosetta_steps`: it lists the
steps it finds with their gists, runs a step with the arguments given (`rosetta <step> ...`
is `python -m rosetta_steps.<step> ...`), and refuses an unknown step in one line."""

from __future__ import annotations

import os
import subprocess
import sys
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
