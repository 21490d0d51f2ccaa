"""`python -m rosetta_steps.inventory`: what mining a dictionary made (`mining.inventory`): each
match, null and sample store checked complete from its metadata, and per D the images and units
mined and the bytes, with the dissections' units and labels. Writes JSON (a DVC metric).

    python -m rosetta_steps.inventory NAME --matches M1.zarr ... [--nulls N1.zarr ...] \
        --samples S1.zarr ... [--dissections D1.csv ...] --out inventory.json
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.stores import write_json
from .mining.inventory import inventory


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("inventory", __doc__)
    parser.add_argument("name", help="the dictionary")
    parser.add_argument("--matches", nargs="+", required=True, metavar="ZARR",
                        help="its match stores: each D, twin, pixel control and G itself")
    parser.add_argument("--nulls", nargs="+", default=[], metavar="ZARR",
                        help="their null match stores")
    parser.add_argument("--samples", nargs="+", required=True, metavar="ZARR",
                        help="its sample stores")
    parser.add_argument("--dissections", nargs="+", default=[], metavar="CSV",
                        help="the dissections of its models (the dissect step)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args(argv)
    write_json(args.out, inventory(args.name, matches=args.matches, samples=args.samples,
                                   nulls=args.nulls, dissections=args.dissections))


if __name__ == "__main__":
    raise SystemExit(run(main))
