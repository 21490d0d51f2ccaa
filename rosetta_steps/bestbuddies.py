"""`python -m rosetta_steps.bestbuddies`: the best-buddy pairs of one (G, D) match store
(paper, Eq. 3; `mining.buddies`), one CSV row per pair, most correlated first. With the
pair's null match stores (`--null`), each pair gets its q value (the target-decoy false
discovery rate, `mining.null`) and `--null-out` lists the null best buddies.

    python -m rosetta_steps.bestbuddies MATCHES.zarr --k 5 --out BB.csv \
        [--null NULL1.zarr NULL2.zarr --null-out BB-null.csv]

`best_buddies` is re-exported here for users' scripts:
`from rosetta_steps.bestbuddies import best_buddies`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

from .core import options
from .core.cli import UserError, run
from .core.stores import atomic_output
from .mining.buddies import RULES, best_buddies, best_buddy_table, with_null

__all__ = ["best_buddies", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("bestbuddies", __doc__)
    parser.add_argument("matches", help="match store (Zarr) of one (G, D) pair")
    parser.add_argument("--k", type=int, default=5, help="neighbours per unit (default 5)")
    parser.add_argument("--rule", choices=RULES, default="mutual",
                        help="mutual: Eq. 3 of the paper; original: the original code's variant")
    parser.add_argument("--null", nargs="+", default=[], metavar="NULL",
                        help="the pair's null match stores: adds a q column")
    parser.add_argument("--out", required=True, help="CSV to write, one row per pair")
    parser.add_argument("--null-out", help="CSV of the null best buddies (needs --null)")
    args = parser.parse_args(argv)
    if args.null_out and not args.null:
        raise UserError("--null-out lists the null best buddies: give the null stores (--null)")
    table = best_buddy_table(args.matches, k=args.k, rule=args.rule)
    null_table = None
    if args.null:
        table, null_table = with_null(table, args.matches, args.null, k=args.k, rule=args.rule)
    # both tables are written before either is put in place: a failure leaves neither
    with atomic_output(args.out) as tmp, ExitStack() as null_out:
        table.to_csv(tmp, index=False)
        if args.null_out:
            null_table.to_csv(null_out.enter_context(atomic_output(args.null_out)), index=False)
    found = f", {(table['q'] <= 0.05).sum()} at q <= 0.05" if args.null else ""
    print(f"{len(table)} best-buddy pairs (K={args.k}, {args.rule}){found} -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
