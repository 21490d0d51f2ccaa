"""`python -m rosetta_steps.edit`: edits of generated images through their Rosetta maps (Sec. 4.2).

The maps of the dictionary's Rosetta G units on `n` generated images (latents (seed, i)) are
edited (`edits`), then the latent is re-optimised so that G's maps correlate with the edited
ones: Eq. 5 with each Rosetta G unit paired with itself, centred and scaled by its mining
statistics (from the G-vs-G match store), and the distance form of L_act (`inversion`): the
paper asks the maps to converge to the edited ones, which Eq. 6's unbounded product does not.
The optimisation starts from the image's own latent, or from a random one for copy & paste,
as in the paper. Remove and add change one concept (by
default each image's most active one) and keep every other Rosetta map as it was.

The step writes a before/after sheet (PNG) and what the edit did, measured (`measures`, JSON):
the object centroid's displacement against the asked one (shift), the growth of the object
area (zoom), the object count (copy & paste), and the chosen concept's activation after over
before with the relative change of the other concepts (remove, add).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
from PIL import Image

from . import edits, models
from .cli import UserError, run
from .devices import add_device_options, resolve_device, set_threads
from .heatmaps import Z_RANGE, turbo, unit_stats
from .inversion import (
    Pair,
    Settings,
    add_optimiser_options,
    generator_forward,
    invert,
    settings_from,
)
from .measures import (
    area,
    centroid,
    concept_activation,
    concept_map,
    count,
    interval,
    object_mask,
)
from .rosetta import read_concept_table
from .sample import ALL, subset_class, to_uint8
from .samplesheet import grid, side_by_side
from .stores import atomic_output, open_match_store

EDITS = ("shift", "zoom", "copy_paste", "remove", "add")
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
        return edits.shift(maps, options.shift)
    if edit == "zoom":
        return edits.zoom_in(maps, options.zoom)
    if edit == "copy_paste":
        return edits.copy_paste(maps, options.shift)
    change = edits.remove if edit == "remove" else partial(edits.scale, factor=options.scale)
    parts = [change({k: v[i:i + 1] for k, v in maps.items()}, members[c])
             for i, c in enumerate(chosen)]
    return {k: torch.cat([p[k] for p in parts]) for k in maps}


def _edited_mask(edit: str, mask: np.ndarray, options: EditOptions) -> np.ndarray:
    """The object mask a perfect edit would give: the same edit applied to the pixels."""
    x = {"mask": torch.from_numpy(mask[:, None].astype(np.float32))}
    return (edited_maps(edit, x, {}, [], options)["mask"][:, 0] > 0.5).numpy()


def _share(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def measure(edit: str, before: np.ndarray, after: np.ndarray, start: np.ndarray,
            act0: np.ndarray, act1: np.ndarray, chosen_col: np.ndarray,
            options: EditOptions) -> dict:
    """What the edit did (see the module doc) next to what a perfect edit of the pixels
    would do; images uint8 [n, h, w, 3], concept activations [n, concepts]."""
    m0, m1 = object_mask(before), object_mask(after)
    if edit == "shift":
        ideal = _edited_mask(edit, m0, options)
        moved, asked = centroid(m1) - centroid(m0), centroid(ideal) - centroid(m0)
        ok = ~np.isnan(moved).any(axis=1) & ~np.isnan(asked).any(axis=1)
        return {"images_measured": int(ok.sum()),
                "moved_x_px": interval(moved[ok, 0]), "moved_y_px": interval(moved[ok, 1]),
                "perfect_x_px": interval(asked[ok, 0]),
                "share_moved_right": _share(moved[ok, 0] > 0)}
    if edit == "zoom":
        ideal = _edited_mask(edit, m0, options)
        ok = area(ideal) > 0
        return {"images_measured": int(ok.sum()),
                "area_ratio": interval(area(m1)[ok] / area(m0)[ok]),
                "perfect_area_ratio": interval(area(ideal)[ok] / area(m0)[ok]),
                "share_grown": _share(area(m1)[ok] > area(m0)[ok])}
    if edit == "copy_paste":
        return {"objects_original": interval(count(m0)),
                "objects_random_start": interval(count(object_mask(start))),
                "objects_after": interval(count(m1)),
                "objects_perfect": interval(count(_edited_mask(edit, m0, options)))}
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


def _heat(z: np.ndarray) -> np.ndarray:
    lo, hi = Z_RANGE
    return turbo((z - lo) / (hi - lo))


def edit_images(gan: str, weights: str | None, concepts_csv: str, matches: str, edit: str,
                n: int, seed: int, settings: Settings, options: EditOptions,
                subset: str = ALL, truncation: float | None = None, device: str = "cpu"
                ) -> tuple[dict, Image.Image]:
    """Edit `n` generated images; returns (measurements, before/after sheet)."""
    if edit not in EDITS:
        raise UserError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")
    if n < 2:
        raise UserError(f"need at least 2 images for confidence intervals, got {n}")
    dev = resolve_device(device)
    spec, model = models.load(gan, weights, dev)
    forward = generator_forward(spec, model, subset_class(spec, subset), truncation)
    concepts = read_concept_table(concepts_csv)
    pairs, members, stats = self_pairs(concepts, open_match_store(matches))
    if options.concept is not None and options.concept not in members:
        raise UserError(f"no concept {options.concept}; the table has 1..{max(members)}")
    layers = sorted({p.gan_layer for p in pairs})
    z0 = spec.latent.sample(seed, range(n), truncation).to(dev)
    with torch.no_grad():
        images, maps = forward(z0)
    maps = {k: maps[k] for k in layers}
    act0 = concept_activation(maps, members, stats)
    order = list(members)
    chosen = ([options.concept] * n if options.concept is not None
              else [order[i] for i in act0.argmax(axis=1)])
    target = edited_maps(edit, maps, members, chosen, options)
    start = (spec.latent.sample(seed, range(RANDOM_START, RANDOM_START + n), truncation).to(dev)
             if edit == "copy_paste" else z0)
    z, history = invert(forward, start, pairs, target, settings)
    with torch.no_grad():
        start_images = forward(start)[0]
        after, maps1 = forward(z)
    act1 = concept_activation(maps1, members, stats)
    before_u8, after_u8, start_u8 = to_uint8(images), to_uint8(after), to_uint8(start_images)
    chosen_col = np.asarray([order.index(c) for c in chosen])
    metrics = {"edit": edit, "gan": gan, "subset": subset, "images": n, "seed": seed,
               "steps": settings.steps, "lr": settings.lr, "alpha": settings.alpha,
               "pairs": len(pairs), "similarity_start": history[0]["act"],
               "similarity_end": history[-1]["act"],
               **measure(edit, before_u8, after_u8, start_u8, act0, act1, chosen_col, options)}
    if edit in ("remove", "add"):
        metrics["chosen_concepts"] = [int(c) for c in chosen]
    panels = {"before": before_u8}
    if edit == "copy_paste":
        panels["random start"] = start_u8
    panels[f"after {edit}"] = after_u8
    if edit in ("remove", "add"):
        side = before_u8.shape[1]
        panels["concept before"] = _heat(np.stack(
            [concept_map(maps, members[c], stats, side)[i] for i, c in enumerate(chosen)]))
        panels["concept after"] = _heat(np.stack(
            [concept_map(maps1, members[c], stats, side)[i] for i, c in enumerate(chosen)]))
    sheet = side_by_side({title: grid(im, cols=1) for title, im in panels.items()})
    return metrics, sheet


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.edit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--weights", help="the generator's weights file")
    parser.add_argument("--subset", default=ALL, help="class of a class-conditional G")
    parser.add_argument("--truncation", type=float, help="latent truncation (default: G's)")
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--matches", required=True, help="the G-vs-G match store")
    parser.add_argument("--edit", required=True, choices=EDITS)
    parser.add_argument("--images", type=int, default=8)
    add_optimiser_options(parser, steps=300, lr=0.05)
    parser.add_argument("--shift", type=float, default=0.25, help="share of the map width")
    parser.add_argument("--zoom", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=2.0, help="add: factor on the maps")
    parser.add_argument("--concept", type=int, help="remove/add: concept number "
                        "(default: each image's most active)")
    add_device_options(parser)
    parser.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = settings_from(args, similarity="distance")
    options = EditOptions(args.shift, args.zoom, args.scale, args.concept)
    metrics, sheet = edit_images(args.gan, args.weights, args.concepts, args.matches,
                                 args.edit, args.images, args.seed, settings, options,
                                 args.subset, args.truncation, args.device)
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_output(args.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    raise SystemExit(run(main))
