"""`python -m rosetta_steps.twin`: an untrained twin's weights file (`mining.twinning`): a
discriminative model's architecture at the seeded random weights of `twin<s>:<model>`, with
its BatchNorm statistics re-estimated on images start .. start+count-1 of the dictionary (G's,
or the data set's anchored on --gan); mined against G like any D, it says what the
architecture alone shares with G (`mining.controls`).

    python -m rosetta_steps.twin --gan shapes-gan --weights shapes-gan=G.safetensors \
        --twin twin1:shapes-cnn-sup --count 256 --out results/twins/shapes-gan/all/T.safetensors
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import datasets, options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .mining.twinning import make_twin
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("twin", __doc__)
    parser.add_argument("--gan", "--anchor", required=True,
                        help="generator name (with --dataset: the anchor model)")
    parser.add_argument("--twin", required=True, help="twin<seed>:<model>, seeds from 1")
    options.add_weights_option(parser)
    options.add_shard_options(parser)
    datasets.add_dataset_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="weights file (safetensors)")
    args = parser.parse_args(argv)
    declare(args.declare)
    data = datasets.from_args(args)
    set_threads(args.threads)
    norms = make_twin(gan=args.gan, twin=args.twin,
                      weights=options.parse_weights(args.weights, [args.gan]), seed=args.seed,
                      start=args.start, count=args.count, batch_size=args.batch_size,
                      out=args.out, truncation=args.truncation,
                      device=resolve_device(args.device), subset=args.subset, data=data)
    print(f"{args.twin}: {norms} BatchNorm layer(s) re-estimated on {args.count} images "
          f"-> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
