"""`python -m rosetta_steps.sample`: one shard of generated images, kept for the pages to show
(`mining.sampling`).

    python -m rosetta_steps.sample --gan shapes-gan --weights shapes-gan=W.safetensors \
        --subset all --seed 0 --start 0 --count 256 \
        --out results/samples/shapes-gan/all/000000-000256.zarr
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .mining.sampling import sample_shard, write_samples
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("sample", __doc__)
    parser.add_argument("--gan", required=True, help="generator name")
    options.add_weights_option(parser)
    options.add_shard_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="sample store to write (Zarr)")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.gan])
    ds = sample_shard(gan=args.gan, weights=weights.get(args.gan), subset=args.subset,
                      seed=args.seed, start=args.start, count=args.count,
                      batch_size=args.batch_size, truncation=args.truncation,
                      device=resolve_device(args.device))
    write_samples(ds, args.out)


if __name__ == "__main__":
    raise SystemExit(run(main))
