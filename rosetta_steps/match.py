"""`python -m rosetta_steps.match`: one shard of unit matching for a generator and its partners
(Eq. 1-2, `mining.matching`). Writes each (G, D) pair's shard state (float64 sums) to Zarr;
`reduce` merges a pair's shards into its match store. All pairs come from one forward pass of
G and of each D per image; states larger than what the models and a batch's maps leave of
--mem-mb are cut into row blocks of G units and take more passes. The generator's own
name as --disc (or no --disc) matches G against itself, which the Rosetta step needs for
BB(G, G). --samples also writes the shard's sample store from the same pass. `--null R`
keeps R null permutations (D's images rolled within each batch; `mining.null`) in every
state. `--dataset NAME=JSON` mines a data set's images instead, with the --gan (or
--anchor) model in G's role.

    python -m rosetta_steps.match --gan shapes-gan --weights shapes-gan=G.safetensors \
        --disc shapes-cnn-sup --out sup.zarr --disc shapes-gan --out self.zarr \
        --seed 0 --start 0 --count 128 --samples samples.zarr
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .core import datasets, options
from .core.cli import UserError, run
from .core.devices import AUTOCAST, resolve_device, set_threads
from .mining.matching import Pair, mine_shard
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("match", __doc__)
    parser.add_argument("--gan", "--anchor", required=True,
                        help="generator name (with --dataset: the anchor model)")
    parser.add_argument("--disc", action="append", default=[],
                        help="a partner: a discriminative model, or the generator itself "
                        "(repeat, one --out each; none: G against itself)")
    parser.add_argument("--out", type=Path, action="append", default=[],
                        help="shard state to write (Zarr), one per --disc, in order")
    parser.add_argument("--samples", type=Path, help="also write the shard's sample store")
    options.add_weights_option(parser)
    options.add_shard_options(parser)
    datasets.add_dataset_options(parser)
    parser.add_argument("--null", type=int, default=0, metavar="R",
                        help="null permutations to keep beside the observed pairing (0)")
    options.add_budget_option(parser)
    parser.add_argument("--autocast", choices=AUTOCAST, default="auto",
                        help="bfloat16 forward passes: auto (on CUDA only), on or off; the "
                        "correlation sums stay float64")
    args = parser.parse_args(argv)
    declare(args.declare)
    discs = args.disc or [args.gan]
    if len(args.out) != len(discs):
        raise UserError(f"{len(discs)} partner(s) and {len(args.out)} --out path(s): give one "
                        "--out per --disc, in order")
    data = datasets.from_args(args)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.gan, *discs])
    mined = mine_shard(gan=args.gan, pairs=[Pair(d, o) for d, o in zip(discs, args.out,
                                                                        strict=True)],
                       weights=weights, seed=args.seed, start=args.start, count=args.count,
                       batch_size=args.batch_size, truncation=args.truncation,
                       device=resolve_device(args.device), subset=args.subset,
                       nulls=args.null, mem_mb=args.mem_mb, samples=args.samples,
                       autocast=args.autocast, data=data)
    # each pass runs G again: say what one pass would need
    more = (f"; mem_mb {math.ceil(mined.one_pass_mb):,} would take one" if mined.passes > 1
            else "")
    print(f"{args.gan}: {len(discs)} pair(s) of images {args.start}..{args.start + args.count - 1}"
          f" in {mined.passes} pass(es) of G{more}")


if __name__ == "__main__":
    raise SystemExit(run(main))
