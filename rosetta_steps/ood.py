"""`python -m rosetta_steps.ood`: out-of-distribution inversion (Fig. 5 of the paper).

Sketches and cartoons (data/ood, drawn by workflow/scripts/make_ood_targets.py) are inverted
into the generator twice from the same seeded starts: by their pixels alone (reconstruction,
which copies the style as far as G can), and by the Rosetta maps that every discriminative
model computes on them alone (Eq. 5, no pixel term), which keeps the layout and lets G render
it in its own style. The distance form of L_act is used, as Eq. 6's product is unbounded
without a pixel term (`inversion`). The step writes one sheet: targets and both inversions.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import models
from .cli import UserError, parse_weights, run
from .devices import add_device_options, resolve_device, set_threads
from .inversion import (
    Settings,
    add_guidance_options,
    add_optimiser_options,
    check_guidance_inputs,
    generator_forward,
    guidance_by_disc,
    invert,
    settings_from,
)
from .rosetta import read_concept_table
from .sample import to_uint8
from .samplesheet import grid, side_by_side
from .stores import atomic_output

START = 2 * 10 ** 9  # latent indices of the starts, beyond any dictionary's images


def read_targets(paths: Sequence[Path], size: int) -> torch.Tensor:
    """RGB images -> [n, 3, size, size] in [-1, 1] (bilinear resize when sizes differ)."""
    images = []
    for path in paths:
        try:
            image = Image.open(path).convert("RGB")
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read target image {path}: {err}") from None
        images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
    out = []
    for x in images:
        x = x[None].float().div(127.5).sub(1)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out.append(x)
    return torch.cat(out)


def ood_sheet(gan: str, weights: Mapping[str, str], concepts_csv: str, discs: Sequence[str],
              bestbuddies: Sequence[str], matches: Sequence[str], targets: Sequence[Path],
              seed: int, settings: Settings, device: str = "cpu") -> Image.Image:
    """Invert each target by pixels and by the Rosetta maps of all `discs`; the sheet."""
    if not targets:
        raise UserError("no target images given")
    check_guidance_inputs(discs, bestbuddies, matches)
    dev = resolve_device(device)
    spec, model = models.load(gan, weights.get(gan), dev)
    forward = generator_forward(spec, model)
    z0 = spec.latent.sample(seed, range(START, START + len(targets))).to(dev)
    with torch.no_grad():
        size = forward(z0[:1])[0].shape[-1]
    images = read_targets(targets, size).to(dev)
    concepts = read_concept_table(concepts_csv)
    pairs, maps = [], {}
    for found, found_maps in guidance_by_disc(concepts, discs, weights, bestbuddies, matches,
                                              images).values():
        pairs += found
        maps |= found_maps
    by_pixels, _ = invert(forward, z0, [], {}, replace(settings, act_weight=0.0, rec_weight=1.0),
                          images)
    by_rosetta, _ = invert(forward, z0, pairs, maps, replace(settings, similarity="distance"))
    with torch.no_grad():
        columns = {"target": to_uint8(images),
                   "by pixels (reconstruction)": to_uint8(forward(by_pixels)[0]),
                   f"by Rosetta maps ({len(pairs)} pairs)": to_uint8(forward(by_rosetta)[0])}
    return side_by_side({title: grid(im, cols=1) for title, im in columns.items()})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.ood",
                                     description=__doc__.split("\n\n")[0])
    add_guidance_options(parser)
    parser.add_argument("--targets", nargs="+", type=Path, required=True, help="images")
    add_optimiser_options(parser)
    add_device_options(parser)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = settings_from(args)
    sheet = ood_sheet(args.gan, parse_weights(args.weights), args.concepts, args.discs,
                      args.bestbuddies, args.matches, args.targets, args.seed, settings,
                      args.device)
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(run(main))
