"""Unit heatmaps on generated images, as the dictionary figures show them (paper, Fig. 2-3).

A page shows a unit's activation map only on the few images it shows. The sample stores keep
each image's latent, class, pixels and every G unit's spatial mean, so the images where some G
units are most active are picked from the stored means (`Samples.top_images`), and only those
images go through G, and G's output through each D, again (`render_heatmaps`, batched, every
model once per batch). Maps are normalised with the mining statistics of the match stores
(per-unit mean and std at native resolution, Eq. 1), resized bilinearly to the image as in
matching, and colour-mapped on one fixed scale, so colours compare across models and images.
The stored pixels are shown; regenerated images that differ from them mean the wrong weights.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, features

from .. import models
from ..core.cli import UserError
from ..core.images import Z_RANGE, to_uint8, to_unit_range, turbo
from ..core.units import Unit
from .gallery import Samples

ALPHA = (0.25, 0.9)  # heatmap opacity at the bottom and the top of the scale
MAX_SIDE = 160  # images and heatmaps are embedded at most this many pixels wide
PIXEL_TOLERANCE = 4.0  # mean |regenerated - stored| (of 255) above which weights differ
Loaded = tuple  # (ModelSpec, torch.nn.Module), as models.load returns


def load_models(names: Sequence[str], weights: Mapping[str, str], device: torch.device | str
                ) -> dict[str, Loaded]:
    """Load models by name, each with its weights file when `weights` names one."""
    for name in weights:
        models.get(name)  # an unknown name is a user error
    return {name: models.load(name, weights.get(name), device) for name in names}


def colour_scale(n: int = 64) -> np.ndarray:
    """The colour bar: [1, n, 3] uint8, low to high."""
    return turbo(np.linspace(0, 1, n))[None]


def data_url(image: np.ndarray, quality: int = 85) -> str:
    """uint8 [h, w, 3 or 4] -> a data: URL (lossy WebP when Pillow has it, PNG otherwise)."""
    buf = io.BytesIO()
    if features.check("webp"):
        Image.fromarray(image).save(buf, format="WEBP", quality=quality, method=2)
        mime = "image/webp"
    else:
        Image.fromarray(image).save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def display_side(side: int) -> int:
    return min(side, MAX_SIDE)


def image_urls(samples: Samples, ids: Iterable[int]) -> dict[int, str]:
    """The stored pixels of images `ids`, as data URLs at display size."""
    ids = sorted(set(ids))
    out = {}
    for i, pixels in zip(ids, samples.pixels(ids) if ids else [], strict=True):
        image = Image.fromarray(pixels)
        side = display_side(image.width)
        if side != image.width:
            image = image.resize((side, side), Image.LANCZOS)
        out[i] = data_url(np.asarray(image), quality=90)
    return out


def normalise_maps(maps: torch.Tensor, mean: np.ndarray, std: np.ndarray, side: int
                   ) -> np.ndarray:
    """Maps [n, s, s] -> z-scores with the mining statistics, bilinearly resized to side."""
    m = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.as_tensor(np.where(std > 0, std, 1.0), dtype=torch.float32)[:, None, None]
    z = (maps.float().cpu() - m) / s
    if z.shape[-1] != side:
        z = F.interpolate(z[:, None], size=(side, side), mode="bilinear",
                          align_corners=False)[:, 0]
    return z.numpy()


def heat_rgba(z: np.ndarray) -> np.ndarray:
    """Normalised maps [n, s, s] -> uint8 RGBA [n, s, s, 4] on the fixed scale Z_RANGE.

    Colour and opacity both rise with the activation, so the image shows through where the
    unit is quiet and the map covers it where the unit fires.
    """
    lo, hi = Z_RANGE
    t = np.clip((z - lo) / (hi - lo), 0.0, 1.0)
    alpha = (255 * (ALPHA[0] + (ALPHA[1] - ALPHA[0]) * t)).round().astype(np.uint8)
    return np.concatenate([turbo(t), alpha[..., None]], axis=-1)


def heat_urls(z: np.ndarray) -> list[str]:
    """Normalised maps [n, s, s] -> heatmap data URLs (see heat_rgba)."""
    return [data_url(rgba, quality=80) for rgba in heat_rgba(z)]


@torch.no_grad()
def render_heatmaps(gan: Loaded, discs: Mapping[str, Loaded], samples: Samples,
                    requests: Mapping[int, Iterable[Unit]],
                    stats: Mapping[Unit, tuple[float, float]], device: torch.device | str,
                    batch_size: int = 16) -> dict[tuple[Unit, int], str]:
    """Heatmap data URLs of the units requested per image id, {(unit, image id): url}.

    The images go through G in batches (stored latents and classes) and G's output through
    every D that has a unit requested, each model once per batch. A data set's stored pixels
    go through its anchor (in G's role) and the Ds instead.
    """
    ids = sorted(i for i, units in requests.items() if units)
    out: dict[tuple[Unit, int], str] = {}
    for lo in range(0, len(ids), batch_size):
        batch = ids[lo:lo + batch_size]
        images, g_maps = _anchor_maps(gan, samples, batch, device)
        wanted = {(u.model, i) for i in batch for u in requests[i]}
        maps = {gan[0].name: g_maps}
        for name, (d_spec, d_model) in discs.items():
            if any((name, i) in wanted for i in batch):
                maps[name] = d_spec.run(d_model, d_spec.preprocess(images))[1]
        side = display_side(images.shape[-1])
        groups: dict[tuple[str, str], list[tuple[int, Unit, int]]] = defaultdict(list)
        for row, i in enumerate(batch):
            for u in sorted(set(requests[i])):
                groups[(u.model, u.layer)].append((row, u, i))
        for (model, layer), items in groups.items():
            if model not in maps:
                raise UserError(f"unit {model} {layer} asked for, but {model} is not loaded")
            if layer not in maps[model]:
                raise UserError(f"{model} has no hooked layer {layer!r}: were the stores made "
                                "with the same model registry?")
            m = maps[model][layer]
            stack = torch.stack([m[row, u.channel] for row, u, _ in items])
            mean = np.array([stats[u][0] for _, u, _ in items])
            std = np.array([stats[u][1] for _, u, _ in items])
            for (_, u, i), url in zip(items, heat_urls(normalise_maps(stack, mean, std, side)),
                                      strict=True):
                out[(u, i)] = url
    return out


def _anchor_maps(gan: Loaded, samples: Samples, ids: Sequence[int],
                 device: torch.device | str) -> tuple[torch.Tensor, dict]:
    """The images `ids` in [-1, 1] and G's maps of them: G run again from the stored latents
    (and checked against the stored pixels), or a data set's stored pixels through its
    anchor."""
    spec, model = gan
    if samples.dataset is not None:
        images = to_unit_range(samples.pixels(ids), device)
        return images, spec.run(model, spec.preprocess(images))[1]
    z = torch.from_numpy(samples.latents(ids)).to(device)
    classes = samples.classes(ids)
    y = None if (classes < 0).all() else torch.from_numpy(classes).long().to(device)
    images, maps = spec.run(model, z, y, samples.truncation)
    _check_pixels(samples, ids, images)
    return images, maps


def _check_pixels(samples: Samples, ids: Sequence[int], images: torch.Tensor) -> None:
    diff = np.abs(to_uint8(images).astype(np.float32) - samples.pixels(ids)).mean()
    if diff > PIXEL_TOLERANCE:
        raise UserError(f"{samples.gan} does not reproduce the sampled images (mean pixel "
                        f"difference {diff:.1f} of 255): pass the weights the sample step used")
