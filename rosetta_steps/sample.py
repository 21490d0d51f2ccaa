"""`python -m rosetta_steps.sample`: one shard of generated images (or of a data set's images,
anchored on a discriminative model), kept for the pages to show (`mining.sampling`).

    python -m rosetta_steps.sample --gan shapes-gan --weights shapes-gan=W.safetensors \
        --subset all --seed 0 --start 0 --count 256 \
        --out results/samples/shapes-gan/all/000000-000256.zarr
    python -m rosetta_steps.sample --anchor shapes-cnn-sup --weights shapes-cnn-sup=W.safetensors \
        --dataset 'shapes-real={"world": "shapes"}' --start 0 --count 128 --out S.zarr
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import datasets, options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .mining.sampling import sample_shard, write_samples
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("sample", __doc__)
    parser.add_argument("--gan", "--anchor", required=True,
                        help="generator name (with --dataset: the anchor model)")
    options.add_weights_option(parser)
    options.add_shard_options(parser)
    datasets.add_dataset_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="sample store to write (Zarr)")
    args = parser.parse_args(argv)
    declare(args.declare)
    data = datasets.from_args(args)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.gan])
    ds = sample_shard(gan=args.gan, weights=weights.get(args.gan), subset=args.subset,
                      seed=args.seed, start=args.start, count=args.count,
                      batch_size=args.batch_size, truncation=args.truncation,
                      device=resolve_device(args.device), data=data)
    write_samples(ds, args.out)


if __name__ == "__main__":
    raise SystemExit(run(main))
