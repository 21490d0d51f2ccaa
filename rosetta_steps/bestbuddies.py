"""`python -m rosetta_steps.bestbuddies`: the best-buddy pairs of one (G, D) match store
(paper, Eq. 3; `mining.buddies`), one CSV row per pair, most correlated first.

    python -m rosetta_steps.bestbuddies MATCHES.zarr --k 5 --out BB.csv

`best_buddies` is re-exported here for users' scripts:
`from rosetta_steps.bestbuddies import best_buddies`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import options
from .core.cli import run
from .core.stores import atomic_output
from .mining.buddies import RULES, best_buddies, best_buddy_table

__all__ = ["best_buddies", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("bestbuddies", __doc__)
    parser.add_argument("matches", help="match store (Zarr) of one (G, D) pair")
    parser.add_argument("--k", type=int, default=5, help="neighbours per unit (default 5)")
    parser.add_argument("--rule", choices=RULES, default="mutual",
                        help="mutual: Eq. 3 of the paper; original: the original code's variant")
    parser.add_argument("--out", required=True, help="CSV to write, one row per pair")
    args = parser.parse_args(argv)
    table = best_buddy_table(args.matches, k=args.k, rule=args.rule)
    with atomic_output(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"{len(table)} best-buddy pairs (K={args.k}, {args.rule}) -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
