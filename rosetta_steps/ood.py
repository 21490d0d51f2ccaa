"""`python -m rosetta_steps.ood`: out-of-distribution inversion (Fig. 5; `inversion.sheets`):
sketches and cartoons inverted into the generator by their pixels and by the Rosetta maps of
every D, as one sheet (PNG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.images import save_png
from .inversion.objective import InversionSettings
from .inversion.sheets import ood_sheet
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("ood", __doc__)
    options.add_guidance_options(parser)
    parser.add_argument("--targets", nargs="+", type=Path, required=True, help="images")
    options.add_optimiser_options(parser, steps=500, lr=0.1)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    settings = InversionSettings(**options.optimiser_values(args))
    weights = options.parse_weights(args.weights, [args.gan, *args.discs])
    sheet = ood_sheet(gan=args.gan, weights=weights,
                      concepts_csv=args.concepts, discs=args.discs,
                      bestbuddies=args.bestbuddies, matches=args.matches, targets=args.targets,
                      seed=args.seed, settings=settings, device=resolve_device(args.device))
    save_png(sheet, args.sheet)


if __name__ == "__main__":
    raise SystemExit(run(main))
