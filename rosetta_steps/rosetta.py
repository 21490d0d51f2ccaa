"""`python -m rosetta_steps.rosetta`: the Rosetta units of a dictionary and their concepts
(paper, Eq. 4, then clustering by the generator's own best buddies; `mining.concepts`).

    python -m rosetta_steps.rosetta --bestbuddies BB1.csv BB2.csv ... \
        --self-matches SELF.zarr --k 5 [--fdr 0.05 [--self-null N1.zarr N2.zarr]] \
        --out concepts.csv
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import options
from .core.cli import UserError, run
from .core.stores import atomic_output
from .mining.buddies import RULES
from .mining.concepts import concept_table


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("rosetta", __doc__)
    parser.add_argument("--bestbuddies", nargs="+", required=True,
                        help="best-buddy CSVs, one per D model, all with the same G")
    parser.add_argument("--self-matches", required=True, help="the G-vs-G match store (Zarr)")
    parser.add_argument("--k", type=int, default=5, help="neighbours for BB(G, G; K) (default 5)")
    parser.add_argument("--rule", choices=RULES, default="mutual",
                        help="best-buddy rule for the self matches (default mutual, Eq. 3)")
    parser.add_argument("--fdr", type=float, metavar="LEVEL",
                        help="keep only G-D pairs with q <= LEVEL (their tables need a q column)")
    parser.add_argument("--self-null", nargs="+", default=[], metavar="NULL",
                        help="G's null self-match stores (reduce --null-out of the G-vs-G "
                        "pair): with --fdr, keep only self best buddies with q <= LEVEL")
    parser.add_argument("--out", required=True, help="concept CSV to write (long format)")
    args = parser.parse_args(argv)
    if args.fdr is not None and not 0 < args.fdr <= 1:
        raise UserError(f"--fdr {args.fdr}: a false discovery rate level is in (0, 1]")
    table = concept_table(args.bestbuddies, args.self_matches, k=args.k, rule=args.rule,
                          fdr=args.fdr, self_nulls=args.self_null)
    with atomic_output(args.out) as tmp:
        table.to_csv(tmp, index=False)
    n_units = (table["role"] == "gan").sum()
    print(f"{n_units} Rosetta units in {table['concept'].nunique()} concepts -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
