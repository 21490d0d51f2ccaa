"""`python -m rosetta_steps.edit`: edits of generated images through their Rosetta maps
(Sec. 4.2; `inversion.editing`): shift, zoom, copy & paste, remove or add a concept. Writes a
before/after sheet (PNG) and what the edit did, measured against what a perfect edit of the
pixels would give (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.images import save_png
from .core.stores import write_json
from .core.units import ALL
from .inversion.editing import EDITS, EditOptions, edit_images
from .inversion.objective import InversionSettings
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("edit", __doc__)
    parser.add_argument("--gan", required=True, help="generator name")
    options.add_weights_option(parser)
    parser.add_argument("--subset", default=ALL, help="class of a class-conditional G")
    parser.add_argument("--truncation", type=float, help="latent truncation (default: G's)")
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--matches", required=True, help="the G-vs-G match store")
    parser.add_argument("--edit", required=True, choices=EDITS)
    parser.add_argument("--images", type=int, default=16, help="generated images (16)")
    options.add_optimiser_options(parser, steps=300, lr=0.05)
    parser.add_argument("--shift", type=float, default=0.25, help="share of the map width")
    parser.add_argument("--zoom", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=2.0, help="add: factor on the maps")
    parser.add_argument("--concept", type=int, help="remove/add: concept number "
                        "(default: each image's most active)")
    parser.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    weights = options.parse_weights(args.weights, [args.gan])
    settings = InversionSettings(**options.optimiser_values(args),
                                 similarity="distance")
    edit_options = EditOptions(shift=args.shift, zoom=args.zoom, scale=args.scale,
                          concept=args.concept)
    metrics, sheet = edit_images(gan=args.gan, weights=weights.get(args.gan),
                                 concepts_csv=args.concepts, matches=args.matches,
                                 edit=args.edit, n=args.images, seed=args.seed,
                                 settings=settings, options=edit_options, subset=args.subset,
                                 truncation=args.truncation, device=resolve_device(args.device))
    save_png(sheet, args.sheet)
    write_json(args.metrics, metrics)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    raise SystemExit(run(main))
