"""Write the docs site's reference pages: docs/reference/configuration.md, every key of
params.yaml from workflow/schemas/params.schema.yaml (type, bounds, description) with the
value params.yaml ships, and docs/reference/steps.md, every step's `rosetta <step> --help`.

The pages are the same bytes on any machine with the same Python minor version (argparse's
layout changes between versions): help is laid out 100 columns wide whatever the terminal,
and a help text may not carry this machine's paths. `make reference` runs this;
tests/test_reference.py fails when the committed pages differ from what it writes.

    python workflow/scripts/reference_pages.py [--check]
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import yaml

from rosetta_steps.__main__ import PROG, module_of, steps, summary

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "workflow/schemas/params.schema.yaml"
PARAMS = "params.yaml"
CONFIGURATION = "docs/reference/configuration.md"
STEPS = "docs/reference/steps.md"
COLUMNS = 100
NAME = "<name>"  # a key the user chooses: a model's, data set's or dictionary's name
WORDS = {"integer": "integer", "number": "number", "string": "string", "boolean": "true or false",
         "null": "null", "array": "list", "object": "mapping"}
BOUNDS = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most",
          "exclusiveMaximum": "less than"}
GENERATED = ("<!-- Written by workflow/scripts/reference_pages.py (`make reference`); "
             "edit its sources, not this page. -->")


def flow(value: object) -> str:
    """A value as it is written in params.yaml (flow style: `[a, b]`, `null`, `'on'`)."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix(
        "\n...\n").strip()


def resolved(node: dict, defs: dict) -> dict:
    """`node` with its `$ref` (to `$defs`) merged in; the node's own keywords win."""
    if "$ref" not in node:
        return node
    target = defs[node["$ref"].removeprefix("#/$defs/")]
    return {**resolved(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}


def kind(node: dict, defs: dict) -> str:
    """What a value may be, in words: type, allowed values, bounds and sizes."""
    return ", ".join(_kind(node, defs))


def _kind(node: dict, defs: dict) -> list[str]:
    """`kind` as a list: the type, then each constraint."""
    node = resolved(node, defs)
    if "enum" in node:
        return ["one of " * (len(node["enum"]) > 1) + ", ".join(f"`{flow(v)}`"
                                                              for v in node["enum"])]
    if "oneOf" in node and not any(set(alt) == {"required"} for alt in node["oneOf"]):
        return [" or ".join(kind(alt, defs) for alt in node["oneOf"])]
    types = node.get("type", [])
    words = [" or ".join(WORDS[t] for t in ([types] if isinstance(types, str) else types))]
    if "properties" in node:
        words[0] += " with keys " + ", ".join(f"`{k}`" for k in node["properties"])
    elif isinstance(node.get("additionalProperties"), dict):
        words[0] += " from names to entries"
    if "items" in node:
        item, *each = _kind(node["items"], defs)
        words[0] += f" of {item}s" + (f" (each {', '.join(each)})" if each else "")
    words += [f"{word} {flow(node[key])}" for key, word in BOUNDS.items() if key in node]
    if "pattern" in node:
        words.append(f"matching `{node['pattern']}`")
    if node.get("minLength") == 1:
        words.append("non-empty")
    if "maxItems" in node:
        words.append(f"{node['minItems']} to {node['maxItems']} items")
    elif "minItems" in node:
        words.append(f"at least {node['minItems']} item{'s' * (node['minItems'] > 1)}")
    if node.get("uniqueItems"):
        words.append("no repeats")
    if "minProperties" in node:
        words.append(f"at least {node['minProperties']} entry")
    return words


def rules(node: dict) -> list[str]:
    """A mapping's rules that tie its keys together (which one of them, which needs which)."""
    out = []
    if "oneOf" in node and all(set(alt) == {"required"} for alt in node["oneOf"]):
        keys = [key for alt in node["oneOf"] for key in alt["required"]]
        out.append("exactly one of " + ", ".join(f"`{k}`" for k in keys))
    for key, needs in node.get("dependentRequired", {}).items():
        out.append(f"`{key}` needs " + " and ".join(f"`{k}`" for k in needs))
    return out


def keys(node: dict, defs: dict, path: tuple[str, ...] = (), need: str = ""
         ) -> Iterator[tuple[tuple[str, ...], dict, str]]:
    """(path, schema, whether it is required) of every key under `node`, depth first: the
    keys of mappings, NAME for a mapping's user-named entries, and the keys of each form that
    an entry may take (`oneOf`)."""
    node = resolved(node, defs)
    if path:
        yield path, node, need
    forms = [node, *(form for form in node.get("oneOf", ()) if "properties" in form)]
    for form in forms:
        within = "" if form is node else ", in the form `{" + ", ".join(form["properties"]) + "}`"
        for key, child in form.get("properties", {}).items():
            required = "yes" if key in form.get("required", ()) else "no"
            yield from keys(child, defs, (*path, key), required + within)
    if isinstance(node.get("additionalProperties"), dict):
        yield from keys(node["additionalProperties"], defs, (*path, NAME))


def shipped(path: tuple[str, ...], node: dict, params: object) -> str | None:
    """The value params.yaml ships at `path`, in words ('' when it has none); for a mapping of
    user-named entries, their names; None for a mapping whose keys each say their own."""
    if "properties" in node or "oneOf" in node and path[-1] == NAME:
        return None
    found, entries = [((), params)], 0
    for key in path:
        found = [(names + (name,) * (key == NAME), value[name])
                 for names, value in found if isinstance(value, dict)
                 for name in (value if key == NAME else [key]) if name in value]
        entries = len(found) if key == NAME else entries
    if isinstance(node.get("additionalProperties"), dict):
        return ", ".join(f"`{name}`" for _, value in found for name in value)
    groups: dict[str, list[str]] = {}
    for names, value in found:
        groups.setdefault(flow(value), []).append(".".join(names))
    if len(groups) == 1 and len(found) == entries > 1:  # every entry sets it alike
        return f"`{next(iter(groups))}` (all {entries})"
    return "; ".join(f"`{value}`" + (f" ({', '.join(names)})" if any(names) else "")
                     for value, names in groups.items())


def configuration_page(schema: dict, params: dict) -> str:
    """docs/reference/configuration.md: a section per key, in the schema's order."""
    defs = schema.get("$defs", {})
    lines = ["# Configuration", "", GENERATED, "",
             f"Every key of `{PARAMS}`, the one file of settings: Snakemake reads it as its "
             "config and DVC as its params, and the rules hand each value to the step that uses "
             f"it. A run starts by checking it against `{SCHEMA}`; this page is written from "
             f"that schema (each key's type, bounds and description) and from `{PARAMS}` (the "
             "shipped values), so edit those and run `make reference`. A key shown as "
             f"`{NAME}` is one you name: a model, a data set or a dictionary."]
    for path, node, need in keys(schema, defs):
        rule = "; ".join(rules(node))
        facts = [f"Type: {kind(node, defs)}" + (f"; {rule}" if rule else "")]
        if need:
            facts.append(f"Required: {need}")
        value = shipped(path, node, params)
        if value is not None:
            facts.append(f"In {PARAMS}: {value or 'not set'}")
        if not node.get("description"):
            raise SystemExit(f"{SCHEMA}: {'.'.join(path)} has no description")
        heading = "#" * min(len(path) + 1, 3)
        lines += ["", f"{heading} `{'.'.join(path)}`", "", " ".join(node["description"].split()),
                  "", *(f"- {fact}" for fact in facts)]
    return "\n".join(lines) + "\n"


def step_help(step: str, path: Path) -> str:
    """What `rosetta <step> --help` prints, laid out COLUMNS wide."""
    module = importlib.import_module(module_of(step, path))
    out, columns = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(COLUMNS)  # argparse's width, whatever the terminal
    try:
        with redirect_stdout(out):
            module.main(["--help"])
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    text = out.getvalue()
    if any(len(here) > 1 and here in text for here in (str(ROOT), str(Path.home()))):
        raise SystemExit(f"{PROG} {step} --help names a path of this machine; help texts "
                         "must say what a default is, not where it points here")
    return text


def steps_page() -> str:
    """docs/reference/steps.md: each step's gist and `--help`, by name."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = ["# Steps", "", GENERATED, "",
             f"Every step of the pipeline, as `{PROG} <step> --help` prints it; `{PROG} <step> "
             "...` is the same command as `python -m rosetta_steps.<step> ...`, which the "
             "workflow's rules run. Written from the steps' own parsers (the top-level modules "
             "of `rosetta_steps` with a `main`, and `models`), laid out "
             f"{COLUMNS} columns wide as Python {version}'s argparse does; run `make "
             "reference` after changing a step's options."]
    for step, path in steps().items():
        gist = summary(path)
        lines += ["", f"## {step}", "", f"{gist[:1].upper()}{gist[1:]}.", "", "```text",
                  step_help(step, path).rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Each reference page's path (relative to the repository) and text."""
    schema = yaml.safe_load((ROOT / SCHEMA).read_text())
    params = yaml.safe_load((ROOT / PARAMS).read_text())
    return {CONFIGURATION: configuration_page(schema, params), STEPS: steps_page()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail when a committed page differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in pages().items():
        path = ROOT / name
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for name in stale if args.check else ():
        print(f"{name} is stale: run `make reference`", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
