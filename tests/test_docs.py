"""Every command in the README, the docs and the measurements log works as written: fenced
`bash` blocks line by line and inline code spans alike. Step commands (`rosetta <step> ...`,
`python -m rosetta_steps.<step> ...`) parse with that step's own parser, `snakemake` and `dvc`
commands with theirs (with Snakemake's targets matching the workflow's output paths and named
dictionaries existing, profiles existing), `make` targets exist in the Makefile, and scripts
under bench/ and workflow/scripts/ parse their arguments. A renamed option, step, target or
profile cannot leave the docs behind. Commands with `<placeholders>` are patterns, not
commands, and are skipped."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import re
import shlex
import sys

import pytest
import yaml
from workflow_project import ROOT

FILES = [ROOT / "README.md", ROOT / "bench" / "RESULTS.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
PROGRAMS = ("rosetta", "python", "snakemake", "dvc", "make")
IGNORED = {"git", "cd", "export", "pip", "ls", "cat", "mkdir", "cp", "cmp", "diff", "rm", "."}
PREFIXES = (("/usr/bin/time", "-v"), ("/usr/bin/time",), ("time",), ("xargs",))
SETTINGS = yaml.safe_load((ROOT / "params.yaml").read_text())
EDITS = {"shift", "zoom", "copy_paste", "remove", "add"}
SHEETS = {"neurons", "ood", "table1"}


def _command(text: str) -> list[str] | None:
    """A command's words without prompt, environment assignments and timing prefixes."""
    words = shlex.split(text.strip().removeprefix("$ "), comments=True)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    for prefix in PREFIXES:
        if tuple(words[: len(prefix)]) == prefix:
            words = words[len(prefix):]
            break
    return [w for w in words if w != "..."] or None


def _shell_lines(block: str) -> list[str]:
    lines = block.replace("\\\n", " ").splitlines()
    if any(line.startswith("$ ") for line in lines):  # a session: output lines follow each $
        lines = [line for line in lines if line.startswith("$ ")]
    return [part for line in lines for part in re.split(r"\s(?:&&|\|\||;|\|)\s", line)]


def doc_commands() -> list[tuple[str, list[str], str]]:
    """(file, words, where) for every command in the docs."""
    out = []
    for path in FILES:
        text = path.read_text()
        name = path.relative_to(ROOT).as_posix()
        for lang, block in FENCE.findall(text):
            if lang in ("bash", "sh", "shell", "console"):
                for line in _shell_lines(block):
                    if line.strip() and "<" not in line and (words := _command(line)):
                        out.append((name, words, line.strip()))
        prose = FENCE.sub("", text)
        for span in INLINE.findall(prose):
            span = " ".join(span.split())
            first = span.split(" ", 1)[0]
            # a quoted line of a step's output (`rosetta match: ...`), not a command
            message = ": error" in span or re.match(r"rosetta [\w-]+: ", span) is not None
            if first in PROGRAMS and " " in span and "<" not in span and not message:
                checkable = r"python (-m rosetta_steps|bench/|workflow/)"
                if first == "python" and not re.match(checkable, span):
                    continue
                if words := _command(span):
                    out.append((name, words, span))
    return out


class Parsed(Exception):
    pass


def _parse_with(monkeypatch, call) -> None:
    """Run `call` with argparse stopping right after a successful parse."""
    real = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        raise Parsed(real(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    with pytest.raises(Parsed):
        call()


def _step(monkeypatch, step: str, args: list[str]) -> None:
    module = "rosetta_steps.models.__main__" if step == "models" else f"rosetta_steps.{step}"
    assert (ROOT / (module.replace(".", "/") + ".py")).exists(), f"no step {step!r}"
    _parse_with(monkeypatch, lambda: importlib.import_module(module).main(args))


def _script(monkeypatch, script: str, args: list[str]) -> None:
    path = ROOT / script
    assert path.exists(), f"{script} does not exist"
    monkeypatch.syspath_prepend(str(path.parent))  # scripts import their neighbours
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    main = module.main
    monkeypatch.setattr(sys, "argv", [script, *args])
    if inspect.signature(main).parameters:
        _parse_with(monkeypatch, lambda: main(args))
    else:
        _parse_with(monkeypatch, main)


def _python(monkeypatch, args: list[str]) -> None:
    if args[:1] == ["-m"] and args[1].startswith("rosetta_steps"):
        module = args[1]
        if module == "rosetta_steps":
            _step(monkeypatch, args[2], args[3:])
        else:
            _step(monkeypatch, module.removeprefix("rosetta_steps.").split(".")[0], args[2:])
    elif args and args[0].startswith(("bench/", "workflow/")):
        _script(monkeypatch, args[0], args[1:])
    else:
        pytest.fail(f"python {' '.join(args)}: not a command the docs test knows how to check")


def _output_patterns() -> list[re.Pattern]:
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    templates = re.findall(r'^[A-Z_]+ = "(results/[^"]+)"', common, re.M)
    return [re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(t)) + "$")
            for t in templates]


def _page_dictionaries(page: str) -> set[str]:
    """Dictionaries that the page's own YAML examples declare."""
    names = set()
    for lang, block in FENCE.findall((ROOT / page).read_text()):
        if lang == "yaml":
            data = yaml.safe_load(block) or {}
            names |= set((data.get("dictionaries") or {}) if isinstance(data, dict) else ())
    return names


def _snakemake(args: list[str], page: str) -> None:
    from snakemake.cli import get_argument_parser

    try:
        parsed = get_argument_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"snakemake {' '.join(args)}: Snakemake refuses these options")
    for profile in filter(None, [parsed.workflow_profile]):
        assert (ROOT / profile / "config.yaml").exists(), f"no profile {profile}"
    dictionaries = set(SETTINGS["dictionaries"]) | _page_dictionaries(page)
    patterns = _output_patterns()
    rules = set(re.findall(r"^rule (\w+):", (ROOT / "Snakefile").read_text(), re.M))
    for target in (t for t in parsed.targets if t not in rules):  # all, share: target rules
        match = next((m for p in patterns if (m := p.match(target))), None)
        assert match, f"{target} is no output of the workflow"
        groups = match.groupdict()
        if "name" in groups:
            assert groups["name"] in dictionaries, f"{target}: no dictionary {groups['name']!r}"
        assert groups.get("edit", "shift") in EDITS, f"{target}: no edit {groups['edit']!r}"
        assert groups.get("sheet", "ood") in SHEETS, f"{target}: no sheet {groups['sheet']!r}"


def _dvc(args: list[str]) -> None:
    from dvc.cli import DvcParserError, parse_args

    try:
        parse_args(args)
    except DvcParserError:
        pytest.fail(f"dvc {' '.join(args)}: DVC refuses this command")


def _make(args: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.M))
    for target in (a for a in args if not a.startswith("-")):
        assert target in targets, f"make {target}: no such target in the Makefile"


@pytest.mark.parametrize("page, words, where",
                         [pytest.param(*c, id=f"{c[0]}: {c[2][:60]}") for c in doc_commands()])
def test_a_documented_command_works_as_written(page, words, where, monkeypatch):
    program, args = words[0], words[1:]
    if program == "rosetta":
        assert args, f"{page}: `{where}` names no step"
        _step(monkeypatch, args[0], args[1:])
    elif program == "python":
        _python(monkeypatch, args)
    elif program == "snakemake":
        _snakemake(args, page)
    elif program == "dvc":
        _dvc(args)
    elif program == "make":
        _make(args)
    elif program == ".ci/run":
        assert (ROOT / ".ci" / "run").exists()
    else:
        assert program in IGNORED or program.startswith(".venv/bin/"), \
            f"{page}: `{where}`: the docs test does not know the program {program!r}"


def test_the_docs_name_commands_of_every_kind():
    """The collector finds what it checks (a broken pattern would make the test above vacuous)."""
    programs = {words[0] for _, words, _ in doc_commands()}
    assert {"rosetta", "python", "snakemake", "dvc", "make"} <= programs
    pages = {page for page, _, _ in doc_commands()}
    assert {"README.md", "docs/tutorial.md", "docs/guides/gpu.md"} <= pages
