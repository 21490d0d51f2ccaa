"""`python -m rosetta_steps.stability`: stability in n of one (G, D) pair's best buddies, from
its match shards with no new forward pass (`mining.stability`): best buddies at 1/8, 1/4, 1/2
and all of the images and their Jaccard overlap with the full set, and the split-half
Jaccard. Writes JSON.

    python -m rosetta_steps.stability SHARD1.zarr SHARD2.zarr ... --k 5 --out stability.json
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.stores import write_json
from .mining.buddies import RULES
from .mining.stability import stability


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("stability", __doc__)
    parser.add_argument("shards", nargs="+", help="the pair's match shards, in image order")
    parser.add_argument("--k", type=int, default=5, help="neighbours per unit (default 5)")
    parser.add_argument("--rule", choices=RULES, default="mutual",
                        help="best-buddy rule (default mutual, Eq. 3)")
    options.add_device_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    table = stability(args.shards, k=args.k, rule=args.rule, device=resolve_device(args.device))
    write_json(args.out, table)
    for row in table["fractions"]:
        print(f"{row['images']:>7} images: {row['best_buddies']:>6} best buddies, "
              f"Jaccard with all {row['jaccard']:.3f}")
    print(f"split halves: Jaccard {table['split_half']['jaccard']:.3f} -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
