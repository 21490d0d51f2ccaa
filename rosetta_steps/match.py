"""`python -m rosetta_steps.match`: one shard of unit matching for a (G, D) pair (Eq. 1-2,
`mining.matching`). Writes the shard's correlation state (float64 sums) to Zarr; `reduce`
merges shards into the pair's match store. Without --disc the generator is matched against
itself, which the Rosetta step needs for BB(G, G). `--null R` also keeps R null permutations
(D's images rolled within each batch; `mining.null`) in the same shard.

    python -m rosetta_steps.match --gan shapes-gan --disc shapes-cnn-sup \
        --weights shapes-gan=G.safetensors --weights shapes-cnn-sup=D.safetensors \
        --seed 0 --start 0 --count 256 --out shard.zarr
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .mining.matching import match_shard
from .mining.state import save_accumulator


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("match", __doc__)
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--disc", help="discriminative model name (omit for G against G)")
    options.add_weights_option(parser)
    options.add_shard_options(parser)
    parser.add_argument("--null", type=int, default=0, metavar="R",
                        help="null permutations to keep beside the observed pairing (0)")
    parser.add_argument("--out", type=Path, required=True, help="shard state to write (Zarr)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.gan, args.disc])
    acc = match_shard(gan=args.gan, disc=args.disc, weights=weights, seed=args.seed,
                      start=args.start, count=args.count,
                      batch_size=args.batch_size, truncation=args.truncation,
                      device=resolve_device(args.device), subset=args.subset,
                      nulls=args.null)
    save_accumulator(acc, args.out, gan=args.gan, disc=args.disc or args.gan,
                     subset=args.subset, seed=str(args.seed), start=str(args.start),
                     count=str(args.count))


if __name__ == "__main__":
    raise SystemExit(run(main))
