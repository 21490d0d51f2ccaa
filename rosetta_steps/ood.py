"""`python -m rosetta_steps.ood`: out-of-distribution inversion (Fig. 5; `inversion.sheets`):
sketches and cartoons inverted into the generator by their pixels and by the Rosetta maps of
every D, as one sheet (PNG).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .core.cli import run
from .core.devices import resolve_device, set_threads
from .core.options import (
    add_device_options,
    add_guidance_options,
    add_optimiser_options,
    parse_weights,
)
from .core.stores import atomic_output
from .inversion.objective import InversionSettings
from .inversion.sheets import ood_sheet


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.ood",
                                     description=__doc__.split("\n\n")[0])
    add_guidance_options(parser)
    parser.add_argument("--targets", nargs="+", type=Path, required=True, help="images")
    add_optimiser_options(parser, steps=500, lr=0.1)
    add_device_options(parser)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = InversionSettings(steps=args.steps, lr=args.lr, alpha=args.alpha, reg=args.reg)
    sheet = ood_sheet(gan=args.gan, weights=parse_weights(args.weights, [args.gan, *args.discs]),
                      concepts_csv=args.concepts, discs=args.discs,
                      bestbuddies=args.bestbuddies, matches=args.matches, targets=args.targets,
                      seed=args.seed, settings=settings, device=resolve_device(args.device))
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(run(main))
