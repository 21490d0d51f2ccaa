"""`python -m rosetta_steps.neurons`: single Rosetta neurons visualised by inversion (Fig. 1,
Sec. 4.1; `inversion.sheets`): each concept's strongest pair with one D, its target image and
D map, and G inverted against that map from several random starts, as one sheet (PNG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .core import options
from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.images import save_png
from .inversion.objective import InversionSettings
from .inversion.sheets import neuron_sheet
from .models.user import declare


def main(argv: Sequence[str] | None = None) -> None:
    parser = options.step_parser("neurons", __doc__)
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--disc", required=True, help="the discriminative model shown")
    options.add_weights_option(parser)
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--bestbuddies", required=True, help="the D's best-buddy table")
    parser.add_argument("--matches", required=True, help="the D's match store")
    parser.add_argument("--starts", type=int, default=3, help="random starts per neuron (3)")
    parser.add_argument("--candidates", type=int, default=64,
                        help="held-out images to pick each neuron's target from (64)")
    options.add_optimiser_options(parser, steps=500, lr=0.1)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    declare(args.declare)
    set_threads(args.threads)
    settings = InversionSettings(**options.optimiser_values(args))
    weights = options.parse_weights(args.weights, [args.gan, args.disc])
    sheet = neuron_sheet(gan=args.gan, weights=weights,
                         concepts_csv=args.concepts, disc=args.disc,
                         bestbuddies=args.bestbuddies, matches=args.matches,
                         starts=args.starts, candidates=args.candidates, seed=args.seed,
                         settings=settings, device=resolve_device(args.device))
    save_png(sheet, args.sheet)


if __name__ == "__main__":
    raise SystemExit(run(main))
