"""`python -m rosetta_steps.edit`: edits of generated images through their Rosetta maps
(Sec. 4.2; `inversion.editing`): shift, zoom, copy & paste, remove or add a concept. Writes a
before/after sheet (PNG) and what the edit did, measured against what a perfect edit of the
pixels would give (JSON).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.options import (
    add_device_options,
    add_optimiser_options,
    add_weights_option,
    parse_weights,
)
from .core.stores import atomic_output
from .core.units import ALL
from .inversion.editing import EDITS, EditOptions, edit_images
from .inversion.objective import InversionSettings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.edit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="generator name")
    add_weights_option(parser)
    parser.add_argument("--subset", default=ALL, help="class of a class-conditional G")
    parser.add_argument("--truncation", type=float, help="latent truncation (default: G's)")
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--matches", required=True, help="the G-vs-G match store")
    parser.add_argument("--edit", required=True, choices=EDITS)
    parser.add_argument("--images", type=int, default=16, help="generated images (16)")
    add_optimiser_options(parser, steps=300, lr=0.05)
    parser.add_argument("--shift", type=float, default=0.25, help="share of the map width")
    parser.add_argument("--zoom", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=2.0, help="add: factor on the maps")
    parser.add_argument("--concept", type=int, help="remove/add: concept number "
                        "(default: each image's most active)")
    add_device_options(parser)
    parser.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    weights = parse_weights(args.weights, [args.gan])
    settings = InversionSettings(steps=args.steps, lr=args.lr, alpha=args.alpha, reg=args.reg,
                                 similarity="distance")
    options = EditOptions(shift=args.shift, zoom=args.zoom, scale=args.scale,
                          concept=args.concept)
    metrics, sheet = edit_images(gan=args.gan, weights=weights.get(args.gan),
                                 concepts_csv=args.concepts, matches=args.matches,
                                 edit=args.edit, n=args.images, seed=args.seed,
                                 settings=settings, options=options, subset=args.subset,
                                 truncation=args.truncation, device=resolve_device(args.device))
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_output(args.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    raise SystemExit(run(main))
