"""`python -m rosetta_steps.dissect`: the IoU of every unit of a model with every label it can
be dissected on (`mining.dissection`, after Network Dissection), and the IoU with each label's
template (its mean mask: the position control). Writes a CSV, one row per unit and label.

- `--labels world` (the shapes zoo): a discriminative model on held-out real images of the
  world with their ground truth (colours, shapes, object, background, contour), a generator on
  its own images with the labels their pixels show.
- `--labels faces` (the faces zoo): the generator `--generator` on its own images, any other
  model on those images, with part masks from MTCNN O-Net's landmarks (`core.faceparts`:
  eye, nose, mouth, skin, hair, background); images without a face are left out. `--sheet`
  draws the landmarks and masks of the first images, for a person to check them.

    python -m rosetta_steps.dissect --model shapes-cnn-sup --weights shapes-cnn-sup=W.safetensors \
        --images 512 --quantile 0.995 --out dissection.csv
    python -m rosetta_steps.dissect --labels faces --generator faces-dcgan --model mtcnn-rnet \
        --images 512 --out rnet.csv
    python -m rosetta_steps.dissect --labels faces --generator faces-dcgan --images 6 \
        --sheet faces-parts.png
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import models
from .core import options
from .core.cli import UserError, run
from .core.devices import resolve_device, set_threads
from .core.faceparts import MIN_PROB, face_labels, parts_sheet
from .core.images import to_uint8
from .core.stores import atomic_output
from .mining.dissection import LANDMARKS, QUANTILE, dissect_faces, dissect_model
from .mining.sampling import generated_batches
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("dissect", __doc__)
    parser.add_argument("--model", help="the model to dissect (needed with --out)")
    parser.add_argument("--labels", choices=["world", "faces"], default="world",
                        help="the shapes world's labels (world) or generated faces' parts")
    parser.add_argument("--generator", help="with --labels faces: the generator whose images "
                        "are dissected on")
    parser.add_argument("--min-prob", type=float, default=MIN_PROB,
                        help=f"with --labels faces: O-Net's face probability below which an "
                        f"image is left out ({MIN_PROB})")
    options.add_weights_option(parser)
    parser.add_argument("--images", type=int, default=512, help="images dissected on (512)")
    parser.add_argument("--seed", type=int, default=0, help="the world's (or latents') seed")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--quantile", type=float, default=QUANTILE,
                        help=f"each unit's threshold: this quantile of its activations "
                        f"({QUANTILE})")
    options.add_device_options(parser)
    parser.add_argument("--out", type=Path, help="CSV to write")
    parser.add_argument("--sheet", type=Path, help="with --labels faces: PNG of the first "
                        "--images images' landmarks and part masks (instead of --out)")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    if (args.out is None) == (args.sheet is None):
        raise UserError("give --out (with --model) or --sheet")
    if args.labels == "faces" and not args.generator:
        raise UserError("--labels faces dissects on a generator's images: give --generator")
    if args.sheet is not None:
        if args.labels != "faces":
            raise UserError("--sheet draws the part masks of --labels faces")
        return draw_sheet(args)
    if not args.model:
        raise UserError("--out needs --model, the model to dissect")
    device = resolve_device(args.device)
    if args.labels == "faces":
        weights = options.parse_weights(args.weights,
                                        list(dict.fromkeys([args.model, args.generator,
                                                            LANDMARKS])))
        table, dropped = dissect_faces(args.model, weights, args.generator, n=args.images,
                                       seed=args.seed, batch_size=args.batch_size,
                                       quantile=args.quantile, min_prob=args.min_prob,
                                       device=device)
        print(f"{LANDMARKS} found no face in {dropped} of {args.images} images (left out)")
    else:
        weights = options.parse_weights(args.weights, [args.model])
        table = dissect_model(args.model, weights.get(args.model), n=args.images,
                              seed=args.seed, batch_size=args.batch_size,
                              quantile=args.quantile, device=device)
    with atomic_output(args.out) as tmp:
        table.to_csv(tmp, index=False)
    best = table.loc[table.groupby(["layer", "channel"])["iou"].idxmax()]
    for r in best.sort_values("iou", ascending=False).head(5).itertuples():
        print(f"{r.layer}:{r.channel:<5} {r.label:<16} IoU {r.iou:.3f} "
              f"(template {r.template_iou:.3f})")
    print(f"{len(best)} units x {table['label'].nunique()} labels -> {args.out}")


def draw_sheet(args) -> None:
    """The first --images images of the generator with O-Net's box and landmarks, and their
    part masks (all of them, a face found or not)."""
    device = resolve_device(args.device)
    weights = options.parse_weights(args.weights, [args.generator, LANDMARKS])
    onet = models.load(LANDMARKS, weights.get(LANDMARKS), device)
    gan = models.load(args.generator, weights.get(args.generator), device)
    _, _, images, _ = next(generated_batches(gan, args.seed, range(args.images), args.images,
                                             device=device))
    _, masks, faces = face_labels(onet, images, min_prob=0.0)
    with atomic_output(args.sheet) as tmp:
        parts_sheet(to_uint8(images), faces, masks).save(tmp, format="PNG")
    found = int((faces.prob >= args.min_prob).sum())
    print(f"{found} of {args.images} faces found; sheet -> {args.sheet}")


if __name__ == "__main__":
    raise SystemExit(run(main))
