"""`python -m rosetta_steps.dissect`: the IoU of every unit of a shapes-world model with every
label of the world (colours, shapes, object, background, contour; `mining.dissection`, after
Network Dissection): a discriminative model on held-out real images with their ground truth,
a generator on its own images with the labels their pixels show. Writes a CSV, one row per
unit and label.

    python -m rosetta_steps.dissect --model shapes-cnn-sup --weights shapes-cnn-sup=W.safetensors \
        --images 512 --quantile 0.995 --out dissection.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.stores import atomic_output
from .mining.dissection import QUANTILE, dissect_model
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("dissect", __doc__)
    parser.add_argument("--model", required=True, help="a model of the shapes zoo")
    options.add_weights_option(parser)
    parser.add_argument("--images", type=int, default=512, help="images dissected on (512)")
    parser.add_argument("--seed", type=int, default=0, help="the world's (or latents') seed")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--quantile", type=float, default=QUANTILE,
                        help=f"each unit's threshold: this quantile of its activations "
                        f"({QUANTILE})")
    options.add_device_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.model])
    table = dissect_model(args.model, weights.get(args.model), n=args.images, seed=args.seed,
                          batch_size=args.batch_size, quantile=args.quantile,
                          device=resolve_device(args.device))
    with atomic_output(args.out) as tmp:
        table.to_csv(tmp, index=False)
    best = table.loc[table.groupby(["layer", "channel"])["iou"].idxmax()]
    top = best.sort_values("iou", ascending=False).head(5)
    for r in top.itertuples():
        print(f"{r.layer}:{r.channel:<5} {r.label:<16} IoU {r.iou:.3f}")
    print(f"{len(best)} units x {table['label'].nunique()} labels -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
