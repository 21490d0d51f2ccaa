"""`python -m rosetta_steps.samplesheet`: real shapes-world images next to a generator's samples.

A picture for a person to judge the generator by: the left panel is drawn from the world the
zoo was trained on, the right panel from the generator at held-out latents.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import models, shapes
from .cli import UserError, run
from .devices import set_threads
from .sample import to_uint8
from .stores import atomic_output
from .training.data import HELD_OUT_START

GAP, TITLE = 16, 24


def grid(images: np.ndarray, cols: int, scale: int = 2, pad: int = 2) -> Image.Image:
    """uint8 [n, h, w, 3] -> one image, `cols` per row, each upscaled `scale` times."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    sheet = Image.new("RGB", (cols * (w * scale + pad) + pad, rows * (h * scale + pad) + pad),
                      "white")
    for i, image in enumerate(images):
        tile = Image.fromarray(image).resize((w * scale, h * scale), Image.NEAREST)
        sheet.paste(tile, (pad + (i % cols) * (w * scale + pad),
                           pad + (i // cols) * (h * scale + pad)))
    return sheet


def side_by_side(panels: dict[str, Image.Image]) -> Image.Image:
    """Panels left to right, each under its title."""
    width = sum(p.width for p in panels.values()) + GAP * (len(panels) - 1)
    height = TITLE + max(p.height for p in panels.values())
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for title, panel in panels.items():
        draw.text((x + 4, 6), title, fill="black")
        sheet.paste(panel, (x, TITLE))
        x += panel.width + GAP
    return sheet


@torch.no_grad()
def sample_sheet(gan: str, weights: str | Path | None, n: int = 32, seed: int = 0,
                 cols: int = 8) -> Image.Image:
    """Real images (held-out indices of the world) next to `n` samples of the generator."""
    spec, model = models.load(gan, weights)
    z = spec.latent.sample(seed, range(HELD_OUT_START, HELD_OUT_START + n))
    fake = to_uint8(spec.generate(model, z, None, None))
    real = shapes.render(n, seed, start=HELD_OUT_START).images
    return side_by_side({"real (shapes world)": grid(real, cols),
                         f"generated ({gan})": grid(fake, cols)})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.samplesheet",
                                     description=__doc__)
    parser.add_argument("--gan", default="shapes-gan")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="PNG file")
    parser.add_argument("--n", type=int, default=32, help="images per panel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if models.get(args.gan).kind != models.GENERATOR:
        raise UserError(f"{args.gan} is not a generator")
    sheet = sample_sheet(args.gan, args.weights, args.n, args.seed)
    with atomic_output(args.out) as tmp:
        sheet.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(run(main))
