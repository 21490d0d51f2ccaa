"""Images in and out: tensors in [-1, 1] (what generators give) to and from uint8 pixels,
target images read from files, the Turbo colour map on the fixed scale of normalised
activations (mining z-scores, Eq. 1) that pages and sheets share, and sheets of image grids
for a person to look at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .cli import UserError
from .stores import atomic_output

Z_RANGE = (0.0, 5.0)  # colour scale of normalised activations (mining z-scores)
GAP, TITLE = 16, 24  # sheets: pixels between panels, and above them for the titles


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] [n, 3, h, w] -> uint8 [n, h, w, 3]."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_unit_range(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [n, h, w, 3] images as a [n, 3, h, w] tensor in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)


def read_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """RGB image files -> [n, 3, size, size] in [-1, 1] (bilinear resize when sizes differ)."""
    out = []
    for path in paths:
        try:
            image = Image.open(path).convert("RGB")
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read target image {path}: {err}") from None
        x = to_unit_range(np.asarray(image)[None].copy())
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out.append(x)
    return torch.cat(out)


def turbo(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB with the Turbo colour map (polynomial approximation)."""
    x = np.clip(x, 0.0, 1.0)[..., None]
    coef = np.array([
        [0.13572138, 0.09140261, 0.10667330], [4.61539260, 2.19418839, 12.64194608],
        [-42.66032258, 4.84296658, -60.58204836], [132.13108234, -14.18503333, 110.36276771],
        [-152.94239396, 4.27729857, -89.90310912], [59.28637943, 2.82956604, 27.34824973]])
    rgb = np.zeros(x.shape[:-1] + (3,))
    for c in coef[::-1]:
        rgb = rgb * x + c
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def heat_colours(z: np.ndarray) -> np.ndarray:
    """Normalised activations -> uint8 RGB on the fixed scale Z_RANGE."""
    lo, hi = Z_RANGE
    return turbo((z - lo) / (hi - lo))


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


def save_png(image: Image.Image, path: str | Path) -> None:
    """A picture for a person (a sheet), written atomically."""
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")


def label(text: str, width: int, height: int) -> np.ndarray:
    """A white uint8 [height, width, 3] tile with `text` (several lines) in black."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).multiline_text((4, 4), text, fill="black")
    return np.asarray(image)
