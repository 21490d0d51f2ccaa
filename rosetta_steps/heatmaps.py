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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from PIL import Image, features

from . import models
from .cli import UserError
from .sample import to_uint8
from .stores import layer_names, open_store

Z_RANGE = (0.0, 5.0)  # colour scale of normalised activations (mining z-scores)
ALPHA = (0.25, 0.9)  # heatmap opacity at the bottom and the top of the scale
MAX_SIDE = 160  # images and heatmaps are embedded at most this many pixels wide
PIXEL_TOLERANCE = 4.0  # mean |regenerated - stored| (of 255) above which weights differ
Loaded = tuple  # (ModelSpec, torch.nn.Module), as models.load returns


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of one model: a channel of a hooked layer."""

    model: str
    layer: str
    channel: int

    @property
    def label(self) -> str:
        return f"{self.layer}:{self.channel}"


def unit_stats(ds: xr.Dataset, side: str, model: str) -> dict[Unit, tuple[float, float]]:
    """Per-unit (mean, std) of one side ('gan' or 'disc') of a match store."""
    layers, channels = layer_names(ds, side), ds[f"{side}_channel"].values
    mean, std = ds[f"{side}_mean"].values, ds[f"{side}_std"].values
    return {Unit(model, str(la), int(c)): (float(m), float(s))
            for la, c, m, s in zip(layers, channels, mean, std, strict=True)}


class Samples:
    """The sampled images of one generator and subset, across the shards' sample stores."""

    def __init__(self, paths: Sequence[str | Path]):
        if not paths:
            raise UserError("no sample stores given (--samples)")
        self.stores = [open_store(p, "samples", "sample store") for p in paths]
        keys = {(ds.attrs.get("gan"), ds.attrs.get("subset"), str(ds.attrs.get("seed")),
                 str(ds.attrs.get("truncation"))) for ds in self.stores}
        if len(keys) > 1:
            raise UserError(f"sample stores come from different runs (gan, subset, seed, "
                            f"truncation): {sorted(keys)}; give the shards of one run")
        first = self.stores[0].attrs
        self.gan, self.subset, self.seed = first["gan"], first["subset"], int(first["seed"])
        trunc = first.get("truncation", "default")
        self.truncation = None if trunc == "default" else float(trunc)
        self.ids = np.concatenate([ds["image"].values for ds in self.stores]).astype(np.int64)
        if len(np.unique(self.ids)) != len(self.ids):
            raise UserError("sample stores overlap (an image index appears twice): "
                            "give each shard once")
        self._where = {int(i): (s, p) for s, ds in enumerate(self.stores)
                       for p, i in enumerate(ds["image"].values)}
        ds = self.stores[0]
        self.units = [Unit(self.gan, str(la), int(c))
                      for la, c in zip(layer_names(ds, "gan"), ds["gan_channel"].values,
                                       strict=True)]
        self.column = {u: i for i, u in enumerate(self.units)}
        self._cache: dict[str, dict[int, np.ndarray]] = {}
        self.activation = np.concatenate([np.asarray(d["activation"].values, dtype=np.float32)
                                          for d in self.stores])

    def __len__(self) -> int:
        return len(self.ids)

    def _gather(self, name: str, ids: Sequence[int]) -> np.ndarray:
        """Rows of variable `name` for image ids, read once per store (chunks decode once)."""
        cache = self._cache.setdefault(name, {})
        todo: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i in sorted({int(i) for i in ids} - cache.keys()):
            if i not in self._where:
                raise UserError(f"image {i} is in no sample store given")
            s, p = self._where[i]
            todo[s].append((p, i))
        for s, items in todo.items():
            rows = np.asarray(self.stores[s][name].isel(image=[p for p, _ in items]).values)
            cache.update({i: row for (_, i), row in zip(items, rows, strict=True)})
        return np.stack([cache[int(i)] for i in ids])

    def pixels(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("pixels", ids)

    def latents(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("latent", ids)

    def classes(self, ids: Sequence[int]) -> np.ndarray:
        return self._gather("class_index", ids)

    def scores(self, units: Sequence[Unit], stats: Mapping[Unit, tuple[float, float]]
               ) -> np.ndarray:
        """Per image, the mean over `units` of their normalised spatial mean activation."""
        missing = [u for u in units if u not in self.column]
        if missing:
            raise UserError(f"G unit {missing[0].label} is not in the sample stores: were they "
                            f"sampled from the generator ({self.gan}) that was mined?")
        cols = [self.column[u] for u in units]
        mean = np.array([stats[u][0] for u in units], dtype=np.float64)
        std = np.array([stats[u][1] for u in units], dtype=np.float64)
        z = (self.activation[:, cols] - mean) / np.where(std > 0, std, 1.0)
        return z.mean(axis=1)

    def top_images(self, units: Sequence[Unit], stats: Mapping[Unit, tuple[float, float]],
                   n: int) -> list[int]:
        """The `n` images where `units` are most active (ties: lower image index first)."""
        order = np.lexsort((self.ids, -self.scores(units, stats)))
        return [int(i) for i in self.ids[order[:n]]]


def load_models(names: Sequence[str], weights: Mapping[str, str], device: torch.device | str
                ) -> dict[str, Loaded]:
    """Load models by name, each with its weights file when `weights` names one."""
    for name in weights:
        models.get(name)  # an unknown name is a user error
    return {name: models.load(name, weights.get(name), device) for name in names}


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
    every D that has a unit requested, each model once per batch.
    """
    g_spec, g_model = gan
    ids = sorted(i for i, units in requests.items() if units)
    out: dict[tuple[Unit, int], str] = {}
    for lo in range(0, len(ids), batch_size):
        batch = ids[lo:lo + batch_size]
        z = torch.from_numpy(samples.latents(batch)).to(device)
        classes = samples.classes(batch)
        y = None if (classes < 0).all() else torch.from_numpy(classes).long().to(device)
        images, g_maps = g_spec.run(g_model, z, y, samples.truncation)
        _check_pixels(samples, batch, images)
        wanted = {(u.model, i) for i in batch for u in requests[i]}
        maps = {g_spec.name: g_maps}
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


def _check_pixels(samples: Samples, ids: Sequence[int], images: torch.Tensor) -> None:
    diff = np.abs(to_uint8(images).astype(np.float32) - samples.pixels(ids)).mean()
    if diff > PIXEL_TOLERANCE:
        raise UserError(f"{samples.gan} does not reproduce the sampled images (mean pixel "
                        f"difference {diff:.1f} of 255): pass the weights the sample step used")
