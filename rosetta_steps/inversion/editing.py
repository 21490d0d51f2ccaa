"""Edits of generated images through their Rosetta maps (Sec. 4.2 of the paper).

The maps of the dictionary's Rosetta G units on generated images are edited, then the latent
is re-optimised so that G's maps match the edited ones (`edit_images`): Eq. 5 with each
Rosetta G unit paired with itself, centred and scaled by its mining statistics (from the
G-vs-G match store), and the distance form of L_act (`objective`), since the paper asks the
maps to converge to the edited ones, which Eq. 6's unbounded product does not. The
optimisation starts from the image's own latent, or from a random one for copy & paste, as in
the paper. Remove and add change one concept (by default each image's most active one) and
keep every other Rosetta map as it was. What the edit did is measured (`measure`, with
`measures`) next to what the same edit applied to the pixels would give; the subjects moved
are the shapes world's objects, found by their colour (`object_geometry`), or, for the faces
zoo, faces as MTCNN's ONet finds them (`FaceGeometry`).

Each edit maps {layer: [batch, channels, h, w]} to edited copies of the same shapes:
- `shift`: move every map by a share of its size (the paper moves 4x4 maps by 1 and 8x8 maps
  by 2, a share of 1/4), padding with zeros;
- `zoom_in`: double each map bilinearly and keep the central crop;
- `copy_paste`: shift once each way, then join the left half of the left-shifted maps and
  the right half of the right-shifted ones (re-optimised from a random latent, as the paper);
- `remove`: set chosen units' maps to their minimum (the concept disappears);
- `scale`: multiply chosen units' maps (a concept grows or appears).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from PIL import Image

from .. import models
from ..core.cli import UserError
from ..core.images import grid, heat_colours, side_by_side, to_uint8, to_unit_range
from ..core.intervals import interval
from ..core.labels import object_mask
from ..core.stores import open_match_store, unit_stats
from ..core.units import ALL
from ..mining.concepts import read_concept_table
from ..mining.sampling import subset_class
from .measures import (
    area,
    centroid,
    concept_activation,
    concept_map,
    count,
)
from .objective import InversionSettings, Pair, generator_forward, invert

Maps = Mapping[str, torch.Tensor]


def _shift_map(x: torch.Tensor, px: int, py: int) -> torch.Tensor:
    """Content moved px to the right and py down, zeros where nothing moved in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    if abs(px) >= w or abs(py) >= h:
        return out
    out[..., max(py, 0):h + min(py, 0), max(px, 0):w + min(px, 0)] = \
        x[..., max(-py, 0):h + min(-py, 0), max(-px, 0):w + min(-px, 0)]
    return out


def shift(maps: Maps, dx: float, dy: float = 0.0) -> dict[str, torch.Tensor]:
    """Every map moved right by `dx` and down by `dy` of its size (negative: left, up)."""
    return {name: _shift_map(x, round(dx * x.shape[-1]), round(dy * x.shape[-2]))
            for name, x in maps.items()}


def zoom_in(maps: Maps, factor: float = 2.0) -> dict[str, torch.Tensor]:
    """Every map enlarged `factor` times bilinearly (align_corners=False), centre-cropped."""
    out = {}
    for name, x in maps.items():
        h, w = x.shape[-2:]
        big = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        top, left = (big.shape[-2] - h) // 2, (big.shape[-1] - w) // 2
        out[name] = big[..., top:top + h, left:left + w]
    return out


def copy_paste(maps: Maps, dx: float = 0.25) -> dict[str, torch.Tensor]:
    """The left half of the maps shifted left by `dx`, next to the right half of the maps
    shifted right by `dx`: the content appears twice."""
    left, right = shift(maps, -dx), shift(maps, dx)
    out = {}
    for name, x in left.items():
        half = x.shape[-1] // 2
        out[name] = torch.cat([x[..., :half], right[name][..., half:]], dim=-1)
    return out


def _with_units(maps: Maps, units: Sequence[tuple[str, int]], change) -> dict[str, torch.Tensor]:
    out = {name: x.clone() for name, x in maps.items()}
    for layer, channel in units:
        out[layer][:, channel] = change(out[layer][:, channel])
    return out


def remove(maps: Maps, units: Sequence[tuple[str, int]]) -> dict[str, torch.Tensor]:
    """The chosen (layer, channel) units' maps set to their minimum, image by image."""
    return _with_units(maps, units, lambda x: x.amin(dim=(-2, -1), keepdim=True).expand_as(x))


def scale(maps: Maps, units: Sequence[tuple[str, int]], factor: float = 2.0
          ) -> dict[str, torch.Tensor]:
    """The chosen (layer, channel) units' maps multiplied by `factor`."""
    return _with_units(maps, units, lambda x: x * factor)


EDITS = ("shift", "zoom", "copy_paste", "remove", "add")
MOVES = EDITS[:3]  # the edits that move subjects, measured by their geometry
RANDOM_START = 10 ** 9  # latent indices of copy & paste's random starts, beyond any dictionary

Units = dict[int, list[tuple[str, int]]]
Stats = dict[tuple[str, int], tuple[float, float]]


@dataclass(frozen=True)
class EditOptions:
    """How far each edit goes."""

    shift: float = 0.25  # of each map's width, rightwards (copy & paste: each way)
    zoom: float = 2.0
    scale: float = 2.0  # add: the factor on the concept's maps
    concept: int | None = None  # remove and add: None is each image's most active concept


def self_pairs(concepts: pd.DataFrame, store: xr.Dataset) -> tuple[list[Pair], Units, Stats]:
    """The Rosetta G units paired with themselves, the units of each concept, and the G units'
    mining statistics (from a match store with G on its gan side)."""
    gan = store.attrs["gan"]
    stats = {(u.layer, u.channel): v for u, v in unit_stats(store, "gan", gan).items()}
    members: Units = {}
    for r in concepts[(concepts.role == "gan") & (concepts.model == gan)].itertuples():
        unit = (str(r.layer), int(r.channel))
        if unit not in stats:
            raise UserError(f"concept unit {unit[0]}:{unit[1]} is not in the match store of "
                            f"{gan}: the concept table and the store come from different runs")
        members.setdefault(int(r.concept), []).append(unit)
    if not members:
        raise UserError(f"the concept table has no units of {gan}: nothing to edit with")
    pairs = [Pair(layer, ch, layer, ch, *stats[(layer, ch)], *stats[(layer, ch)])
             for units in members.values() for layer, ch in units]
    return pairs, members, stats


def edited_maps(edit: str, maps: Mapping[str, torch.Tensor], members: Units,
                chosen: Sequence[int], options: EditOptions) -> dict[str, torch.Tensor]:
    """The target maps of an edit; remove and add change image i's concept `chosen[i]`."""
    if edit == "shift":
        return shift(maps, options.shift)
    if edit == "zoom":
        return zoom_in(maps, options.zoom)
    if edit == "copy_paste":
        return copy_paste(maps, options.shift)
    change = remove if edit == "remove" else partial(scale, factor=options.scale)
    parts = [change({k: v[i:i + 1] for k, v in maps.items()}, members[c])
             for i, c in enumerate(chosen)]
    return {k: torch.cat([p[k] for p in parts]) for k in maps}


def _edited_mask(edit: str, mask: np.ndarray, options: EditOptions) -> np.ndarray:
    """The object mask a perfect edit would give: the same edit applied to the pixels."""
    x = {"mask": torch.from_numpy(mask[:, None].astype(np.float32))}
    return (edited_maps(edit, x, {}, [], options)["mask"][:, 0] > 0.5).numpy()


class Geometry(NamedTuple):
    """Where the subject of each image is: centre (x, y) in pixels [n, 2], area as a share of
    the image [n] (NaN where none is found) and how many subjects there are [n]."""

    centre: np.ndarray
    area: np.ndarray
    count: np.ndarray


def object_geometry(images: np.ndarray, edit: str | None = None,
                    options: EditOptions | None = None) -> Geometry:
    """The shapes world's objects, found by their colour; with `edit`, those of the perfect
    edit (the edit applied to the object mask)."""
    mask = object_mask(images)
    if edit is not None:
        mask = _edited_mask(edit, mask, options)
    return Geometry(centroid(mask), area(mask), count(mask))


class FaceGeometry:
    """Faces, as MTCNN's ONet (a real face detector trained on photos) finds them: its box on
    the whole image where its face probability exceeds 1/2, and the count of the image's two
    halves (square centre crops) where it finds a face. With `edit`, those of the edit
    applied to the pixels, which is what a perfect edit would give."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.spec, self.net = models.load("mtcnn-onet", device=device)
        self.device = device

    def _detect(self, x: torch.Tensor):
        with torch.no_grad():
            return self.net(self.spec.preprocess(x))

    def __call__(self, images: np.ndarray, edit: str | None = None,
                 options: EditOptions | None = None) -> Geometry:
        x = to_unit_range(images, self.device)
        if edit is not None:
            x = edited_maps(edit, {"x": x}, {}, [], options)["x"]
        h, w = x.shape[-2:]
        found = self._detect(x)
        box = found.box.double().cpu().numpy() * [w, h, w, h] + [0, 0, w, h]
        face = found.prob.cpu().numpy() > 0.5
        centre = np.where(face[:, None], (box[:, :2] + box[:, 2:]) / 2, np.nan)
        size = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]) / (w * h)
        half, top = w // 2, (h - w // 2) // 2
        halves = [x[..., top:top + half, :half], x[..., top:top + half, half:2 * half]]
        faces = sum((self._detect(c).prob > 0.5).long() for c in halves).cpu().numpy()
        return Geometry(centre, np.where(face, size, np.nan), faces)


def _share(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def measure(edit: str, before: np.ndarray, after: np.ndarray, start: np.ndarray,
            act0: np.ndarray, act1: np.ndarray, chosen_col: np.ndarray,
            options: EditOptions, geometry=object_geometry) -> dict:
    """What the edit did (see the module doc) next to what a perfect edit of the pixels
    would do; images uint8 [n, h, w, 3], concept activations [n, concepts]. `geometry` finds
    the subjects (objects of the shapes world, or faces)."""
    if edit in MOVES:
        g0, g1, ideal = geometry(before), geometry(after), geometry(before, edit, options)
    if edit == "shift":
        moved, asked = g1.centre - g0.centre, ideal.centre - g0.centre
        ok = ~np.isnan(moved).any(axis=1) & ~np.isnan(asked).any(axis=1)
        return {"images_measured": int(ok.sum()),
                "moved_x_px": interval(moved[ok, 0]), "moved_y_px": interval(moved[ok, 1]),
                "perfect_x_px": interval(asked[ok, 0]),
                "share_moved_right": _share(moved[ok, 0] > 0)}
    if edit == "zoom":
        ok = (ideal.area > 0) & (g0.area > 0) & np.isfinite(g1.area)
        return {"images_measured": int(ok.sum()),
                "area_ratio": interval(g1.area[ok] / g0.area[ok]),
                "perfect_area_ratio": interval(ideal.area[ok] / g0.area[ok]),
                "share_grown": _share(g1.area[ok] > g0.area[ok])}
    if edit == "copy_paste":
        return {"objects_original": interval(g0.count),
                "objects_random_start": interval(geometry(start).count),
                "objects_after": interval(g1.count),
                "objects_perfect": interval(ideal.count)}
    rows = np.arange(len(act0))
    ratio = act1[rows, chosen_col] / act0[rows, chosen_col]
    others = np.ones_like(act0, dtype=bool)
    others[rows, chosen_col] = False
    o0, o1 = act0[others].reshape(len(rows), -1), act1[others].reshape(len(rows), -1)
    change = np.abs(o1 - o0).sum(axis=1) / o0.sum(axis=1)
    key = "share_halved" if edit == "remove" else "share_grown"
    share = np.mean(ratio <= 0.5) if edit == "remove" else np.mean(ratio > 1)
    return {"chosen_activation_ratio": interval(ratio),
            "chosen_activation_ratio_median": float(np.median(ratio)), key: float(share),
            "others_relative_change": interval(change)}


def edit_images(gan: str, weights: str | None, concepts_csv: str, matches: str, edit: str,
                n: int, seed: int, settings: InversionSettings, options: EditOptions,
                subset: str = ALL, truncation: float | None = None,
                device: torch.device | str = "cpu") -> tuple[dict, Image.Image]:
    """Edit `n` generated images; returns (measurements, before/after sheet)."""
    if edit not in EDITS:
        raise UserError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")
    if n < 2:
        raise UserError(f"need at least 2 images for confidence intervals, got {n}")
    spec, model = models.load(gan, weights, device)
    forward = generator_forward(spec, model, subset_class(spec, subset), truncation)
    concepts = read_concept_table(concepts_csv)
    pairs, members, stats = self_pairs(concepts, open_match_store(matches))
    if options.concept is not None and options.concept not in members:
        raise UserError(f"no concept {options.concept}; the table has 1..{max(members)}")
    layers = sorted({p.gan_layer for p in pairs})
    z0 = spec.latent.sample(seed, range(n), truncation).to(device)
    with torch.no_grad():
        images, maps = forward(z0)
    maps = {k: maps[k] for k in layers}
    act0 = concept_activation(maps, members, stats)
    order = list(members)
    chosen = ([options.concept] * n if options.concept is not None
              else [order[i] for i in act0.argmax(axis=1)])
    target = edited_maps(edit, maps, members, chosen, options)
    start = (spec.latent.sample(seed, range(RANDOM_START, RANDOM_START + n), truncation).to(device)
             if edit == "copy_paste" else z0)
    z, history = invert(forward, start, pairs, target, settings)
    with torch.no_grad():
        start_images = forward(start)[0]
        after, maps1 = forward(z)
    act1 = concept_activation(maps1, members, stats)
    before_u8, after_u8, start_u8 = to_uint8(images), to_uint8(after), to_uint8(start_images)
    chosen_col = np.asarray([order.index(c) for c in chosen])
    faces = "faces" in spec.tags  # the judge of moved faces (ONet) loads only when one is needed
    geometry = FaceGeometry(device) if faces and edit in MOVES else object_geometry
    metrics = {"edit": edit, "gan": gan, "subset": subset, "images": n, "seed": seed,
               "steps": settings.steps, "lr": settings.lr, "alpha": settings.alpha,
               "pairs": len(pairs), "similarity_start": history[0]["act"],
               "similarity_end": history[-1]["act"],
               "subjects": "faces" if faces else "objects",
               **measure(edit, before_u8, after_u8, start_u8, act0, act1, chosen_col, options,
                         geometry)}
    if edit in ("remove", "add"):
        metrics["chosen_concepts"] = [int(c) for c in chosen]
    panels = {"before": before_u8}
    if edit == "copy_paste":
        panels["random start"] = start_u8
    panels[f"after {edit}"] = after_u8
    if edit in ("remove", "add"):
        side = before_u8.shape[1]
        panels["concept before"] = heat_colours(np.stack(
            [concept_map(maps, members[c], stats, side)[i] for i, c in enumerate(chosen)]))
        panels["concept after"] = heat_colours(np.stack(
            [concept_map(maps1, members[c], stats, side)[i] for i, c in enumerate(chosen)]))
    sheet = side_by_side({title: grid(im, cols=1) for title, im in panels.items()})
    return metrics, sheet
