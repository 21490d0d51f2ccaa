"""`python -m rosetta_steps.reduce`: correlation shards of one (G, D) pair into its match store
(paper, Eq. 1-2). Each shard holds the float64 sufficient statistics of a disjoint set of
images; merging them is exact (`mining.reduction`), so the match store equals a single
pass. The merge runs in row blocks of G units that fit --mem-mb.
Shards with null permutations also give one null match store per permutation (`--null-out`).

    python -m rosetta_steps.reduce SHARD1.zarr SHARD2.zarr ... [--images N] --out MATCHES.zarr \
        [--null-out NULL1.zarr NULL2.zarr ...]
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .mining.reduction import reduce_pair


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("reduce", __doc__)
    parser.add_argument("shards", nargs="+", help="correlation shard stores (Zarr)")
    parser.add_argument("--images", type=int,
                        help="check that the shards hold images 0..N-1, no more, no fewer")
    parser.add_argument("--out", required=True, help="match store to write (Zarr)")
    parser.add_argument("--null-out", nargs="+", default=[], metavar="NULL",
                        help="null match stores to write, one per null permutation the shards "
                        "hold, in order")
    options.add_device_options(parser)
    options.add_budget_option(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    gan, disc, rows, cols, images = reduce_pair(
        args.shards, out=args.out, null_out=args.null_out, images=args.images,
        device=resolve_device(args.device), mem_mb=args.mem_mb)
    print(f"{gan} x {disc}: {rows} x {cols} units over {images} images -> {args.out}")

if __name__ == "__main__":
    raise SystemExit(run(main))
