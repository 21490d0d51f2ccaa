"""`python -m rosetta_steps.controls`: how much of one (G, D) pair's best buddies training
made (`mining.controls`): each pair's best correlation in its untrained twins (`r_twins`),
the gain over them (`delta`) with its false discovery rate (`q_learned`), and the pixel
control's best channel (`pixel_r`, `pixel_channel`); and per G unit, D's best correlation
beside its twins' (the pages' scatter and histogram).

    python -m rosetta_steps.controls --bestbuddies BB.csv --matches M.zarr \
        --twin-matches T1.zarr T2.zarr --twin-bestbuddies TB1.csv TB2.csv \
        --pixels P.zarr --out pairs.csv --units units.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.stores import write_text
from .mining.buddies import read_best_buddies
from .mining.controls import Best, control_tables, delta_floor


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("controls", __doc__)
    parser.add_argument("--bestbuddies", required=True, help="the pair's best-buddy CSV")
    parser.add_argument("--matches", required=True, help="the pair's match store (Zarr)")
    parser.add_argument("--twin-matches", nargs="+", default=[], metavar="ZARR",
                        help="the match stores of D's untrained twins against G")
    parser.add_argument("--twin-bestbuddies", nargs="+", default=[], metavar="CSV",
                        help="the twins' best-buddy CSVs, in the same order")
    parser.add_argument("--pixels", help="the pixel control's match store against G")
    parser.add_argument("--out", type=Path, required=True, help="pair table (CSV) to write")
    parser.add_argument("--units", type=Path, required=True, help="unit table (CSV) to write")
    args = parser.parse_args(argv)
    pairs, units = control_tables(
        table=read_best_buddies(args.bestbuddies), disc=Best(args.matches),
        twins=[Best(p) for p in args.twin_matches],
        twin_tables=[read_best_buddies(p) for p in args.twin_bestbuddies],
        pixels=Best(args.pixels) if args.pixels else None)
    write_text(args.units, units.to_csv(index=False))
    write_text(args.out, pairs.to_csv(index=False))
    learned = (pairs["q_learned"] <= 0.05).sum()
    print(f"{len(pairs)} pairs: median delta {pairs['delta'].median():.3f}, {learned} at "
          f"q_learned <= 0.05; delta floor {delta_floor(units)}")


if __name__ == "__main__":
    raise SystemExit(run(main))
