"""Reduce correlation shards of one (G, D) pair into its match store (paper, Eq. 1-2).

Each shard holds the float64 sufficient statistics of a disjoint set of images; merging them is
exact, so the match store equals a single pass over all images.

    python -m rosetta_steps.reduce SHARD1.zarr SHARD2.zarr ... --out MATCHES.zarr
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .cli import UserError, run
from .correlation import CorrelationAccumulator
from .stores import load_accumulator, open_store, write_match_store


def reduce_shards(paths: Sequence[str | Path], device: str | None = "cpu"
                  ) -> tuple[CorrelationAccumulator, str, str]:
    """Merge shard states; returns the merged accumulator and the (gan, disc) names."""
    if not paths:
        raise UserError("no shards given")
    names = set()
    for p in paths:
        attrs = open_store(p, "correlation-state", "correlation shard").attrs
        names.add((attrs.get("gan", "gan"), attrs.get("disc", "disc")))
    if len(names) > 1:
        raise UserError(f"shards come from different model pairs {sorted(names)}: "
                        "reduce one (G, D) pair at a time")
    total = CorrelationAccumulator(device)
    for p in tqdm(paths, desc="reduce", unit="shard", disable=len(paths) < 2):
        try:
            total.merge(load_accumulator(p, CorrelationAccumulator(device)))
        except ValueError as err:
            raise UserError(f"shard {p} does not fit the others: {err}") from None
    gan, disc = names.pop()
    return total, gan, disc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.reduce",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", nargs="+", help="correlation shard stores (Zarr)")
    parser.add_argument("--out", required=True, help="match store to write (Zarr)")
    parser.add_argument("--device", default="cpu", help="torch device for the merge (cpu)")
    args = parser.parse_args(argv)
    acc, gan, disc = reduce_shards(args.shards, args.device)
    write_match_store(acc, args.out, gan=gan, disc=disc)
    print(f"{gan} x {disc}: {acc.gan.n_units} x {acc.disc.n_units} units over "
          f"{acc.n_images} images -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
