"""`python -m rosetta_steps.neurons`: single Rosetta neurons visualised by inversion (Fig. 1,
Sec. 4.1; `inversion.sheets`): each concept's strongest pair with one D, its target image and
D map, and G inverted against that map from several random starts, as one sheet (PNG).
"""

from __future__ import annotations

import argparse
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
from .inversion.objective import InversionSettings
from .inversion.sheets import neuron_sheet


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.neurons",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--disc", required=True, help="the discriminative model shown")
    add_weights_option(parser)
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--bestbuddies", required=True, help="the D's best-buddy table")
    parser.add_argument("--matches", required=True, help="the D's match store")
    parser.add_argument("--starts", type=int, default=3, help="random starts per neuron (3)")
    parser.add_argument("--candidates", type=int, default=64,
                        help="held-out images to pick each neuron's target from (64)")
    add_optimiser_options(parser, steps=500, lr=0.1)
    add_device_options(parser)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = InversionSettings(steps=args.steps, lr=args.lr, alpha=args.alpha, reg=args.reg)
    sheet = neuron_sheet(gan=args.gan, weights=parse_weights(args.weights, [args.gan, args.disc]),
                         concepts_csv=args.concepts, disc=args.disc,
                         bestbuddies=args.bestbuddies, matches=args.matches,
                         starts=args.starts, candidates=args.candidates, seed=args.seed,
                         settings=settings, device=resolve_device(args.device))
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(run(main))
