"""`python -m rosetta_steps.models list [NAME...]`: the zoo with kinds, hooked layers and units."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..cli import run
from . import get, names


def describe(name: str) -> str:
    """One line per model: name, kind, unit count, then each hooked layer as channels@size."""
    spec = get(name)
    layers = spec.layer_specs()
    units = sum(layer.channels for layer in layers)
    listed = ", ".join(f"{layer.name} {layer.channels}@{layer.size}" for layer in layers)
    return f"{name:<16} {spec.kind:<15} {units:>6}  {listed}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.models",
                                     description="The model zoo of the registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("list", help="every model with kind, hooked layers and unit count")
    show.add_argument("models", nargs="*", help="only these models (default: all)")
    args = parser.parse_args(argv)
    if args.command == "list":
        chosen = args.models or names()
        for name in chosen:
            get(name)  # fail on an unknown name before printing anything
        print(f"{'MODEL':<16} {'KIND':<15} {'UNITS':>6}  LAYERS (channels@size)")
        for name in chosen:
            print(describe(name))


if __name__ == "__main__":
    raise SystemExit(run(main))
