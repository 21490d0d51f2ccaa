"""The README's step commands parse as written: every `python -m rosetta_steps.<step> ...` in
its bash blocks (continuation lines joined, `...` placeholders dropped) is accepted by that
step's own parser, so a renamed or removed option cannot leave the README behind."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex

import pytest
from workflow_project import ROOT

COMMAND = re.compile(r"^\$? ?python -m rosetta_steps\.(\w+)(.*)$")


def readme_commands() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            m = COMMAND.match(line.strip())
            if m:
                args = [a for a in shlex.split(m.group(2), comments=True) if a != "..."]
                out.append((m.group(1), args))
    return out


class Parsed(Exception):
    pass


@pytest.mark.parametrize("step, args", readme_commands(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_readme_command_parses(step, args, monkeypatch):
    real = argparse.ArgumentParser.parse_args

    def parse_only(self, argv=None, namespace=None):
        raise Parsed(real(self, argv, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    module = "rosetta_steps.models.__main__" if step == "models" else f"rosetta_steps.{step}"
    with pytest.raises(Parsed):
        importlib.import_module(module).main(args)


def test_the_readme_has_commands_for_the_main_steps():
    steps = {step for step, _ in readme_commands()}
    assert {"reduce", "bestbuddies", "rosetta", "dictionary", "pairwise", "train",
            "samplesheet", "models"} <= steps
