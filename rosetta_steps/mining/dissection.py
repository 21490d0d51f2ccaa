"""Dissection: which labelled concept each unit of a model fires on (Network Dissection, Bau et
al. 2017), and the label of each Rosetta concept that follows from its units.

Per unit k, its threshold T_k is the top `quantile` (NetDissect: 0.995) of all its activations
over every position of every image of the data set, at the unit's own map size. Its maps,
bilinearly resized to the label masks' size (align_corners=False) and thresholded at T_k,
give a mask M_k per image, and for every label c with masks L_c

    IoU(k, c) = sum over images |M_k & L_c| / sum over images |M_k | L_c|.

The position control: the same IoU against the label's template, its mean mask over the
images T_c (a fraction per pixel), with |M & T| = sum M T and |M | T| = sum max(M, T), the
IoU of fuzzy sets, which is the IoU above for a 0/1 template. A unit that fires where the
label usually is, whatever the image, matches the template as well as the masks
(`template_iou >= iou`); one that follows the label from image to image matches the masks
better.

A labelled source is images with a dict of label -> bool masks [n, h, w] (`core.labels` for
the shapes world, `core.faceparts` for generated faces; a segmentation data set fits the same
interface). A concept's label is the one with the largest mean IoU over its units that were
dissected, reported with that mean; its placement is `position` when most of those units match
that label's template at least as well as its masks, else `part`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import models
from ..core import world
from ..core.cli import UserError
from ..core.faceparts import MIN_PROB, face_labels
from ..core.images import to_uint8
from ..core.labels import label_masks, pixel_labels
from ..core.stores import read_table
from .sampling import generated_batches

QUANTILE = 0.995
LANDMARKS = "mtcnn-onet"  # the faces zoo's model whose landmarks make the part masks
COLUMNS = ["model", "layer", "channel", "label", "iou", "threshold", "template_iou"]


def thresholds(maps: Mapping[str, torch.Tensor], quantile: float) -> dict[str, torch.Tensor]:
    """Per layer, each unit's top-`quantile` activation over all images and positions, from
    maps [n, channels, s, s] (kthvalue: exact, no size limit)."""
    out = {}
    for layer, x in maps.items():
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        k = min(max(int(np.ceil(quantile * flat.shape[1])), 1), flat.shape[1])
        out[layer] = flat.kthvalue(k, dim=1).values
    return out


def iou_table(model: str, maps: Mapping[str, torch.Tensor], labels: Mapping[str, np.ndarray],
              quantile: float = QUANTILE, chunk: int = 16) -> pd.DataFrame:
    """IoU of every unit of `maps` (layer -> [n, channels, s, s], the n images of `labels`)
    with every label (COLUMNS: one row per unit and label)."""
    if not 0 < quantile < 1:
        raise UserError(f"the dissection quantile must lie in (0, 1), got {quantile}")
    names = list(labels)
    masks = torch.from_numpy(np.stack([labels[c] for c in names], axis=1))  # [n, C, h, w]
    n, size = masks.shape[0], masks.shape[-1]
    label_px = masks.flatten(2).sum(dim=(0, 2)).double()  # [C]
    template = masks.double().mean(dim=0).flatten(1)  # [C, h*w]: T_c
    rows = []
    for layer, t in thresholds(maps, quantile).items():
        x = maps[layer]
        if x.shape[0] != n:
            raise UserError(f"{model} {layer}: {x.shape[0]} images of maps, {n} of labels")
        inter = torch.zeros(x.shape[1], len(names), dtype=torch.float64)
        unit_px = torch.zeros(x.shape[1], dtype=torch.float64)
        fired_at = torch.zeros(x.shape[1], size * size, dtype=torch.float64)  # sum over images
        for i in range(0, n, chunk):
            up = F.interpolate(x[i:i + chunk].float(), size=(size, size), mode="bilinear",
                               align_corners=False)
            fired = (up > t.view(1, -1, 1, 1)).float().transpose(0, 1).flatten(1)  # [k, b*h*w]
            m = masks[i:i + chunk].float().transpose(0, 1).flatten(1)  # [C, b*h*w]
            inter += (fired @ m.T).double()
            unit_px += fired.sum(dim=1).double()
            fired_at += fired.view(x.shape[1], -1, size * size).sum(dim=1).double()
        union = unit_px[:, None] + label_px[None, :] - inter
        iou = torch.where(union > 0, inter / union.clamp_min(1), 0.0)
        t_inter = fired_at @ template.T  # [k, C]: sum M T
        t_union = unit_px[:, None] + n * template.sum(dim=1)[None, :] - t_inter
        t_iou = torch.where(t_union > 0, t_inter / t_union.clamp_min(1e-12), 0.0)
        for ch in range(x.shape[1]):
            rows += [(model, layer, ch, c, float(iou[ch, j]), float(t[ch]),
                      float(t_iou[ch, j])) for j, c in enumerate(names)]
    return pd.DataFrame(rows, columns=COLUMNS)


def collect(batches: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Maps of every batch, concatenated per layer (on the CPU, float32)."""
    parts: dict[str, list[torch.Tensor]] = {}
    for maps in batches:
        for layer, x in maps.items():
            parts.setdefault(layer, []).append(x.detach().float().cpu())
    return {layer: torch.cat(xs) for layer, xs in parts.items()}


def concept_labels(concepts: pd.DataFrame, tables: Sequence[pd.DataFrame]) -> list[dict]:
    """Per concept of a concept table: the label with the largest mean IoU over its dissected
    units, that IoU, how many units it rests on (label None when none was dissected) and its
    placement (`position` when most of those units match the label's template at least as
    well as its masks, else `part`)."""
    ious = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    ious = ious.astype({"layer": str, "channel": int})
    out = []
    for number, members in concepts.groupby("concept", sort=True):
        units = members[["model", "layer", "channel"]].astype({"layer": str, "channel": int})
        found = ious.merge(units, on=["model", "layer", "channel"])
        if found.empty:
            out.append({"concept": int(number), "label": None, "iou": None, "units": 0,
                        "placement": None})
            continue
        mean = found.groupby("label", sort=True)["iou"].mean()
        label = str(mean.idxmax())
        rows = found[found["label"] == label]
        at_position = int((rows["template_iou"] >= rows["iou"]).sum())
        out.append({"concept": int(number), "label": label, "iou": float(mean.max()),
                    "units": len(rows),
                    "placement": "position" if 2 * at_position > len(rows) else "part"})
    return out


@torch.no_grad()
def dissect_model(name: str, weights: str | None, n: int, seed: int, batch_size: int,
                  quantile: float = QUANTILE, device: torch.device | str = "cpu"
                  ) -> pd.DataFrame:
    """Dissect a model of the shapes world: a discriminative model on n held-out real images
    with their ground truth, a generator on its own n images (from seed) with the labels
    their pixels show (`core.labels`)."""
    if n < 1 or batch_size < 1:
        raise UserError(f"need images >= 1 and batch size >= 1, got {n} and {batch_size}")
    spec, model = models.load(name, weights, device)
    if spec.kind == models.GENERATOR:
        images, maps = [], []
        for _, _, batch, g_maps in generated_batches((spec, model), seed, range(n), batch_size,
                                                      device=device, desc=f"dissect {name}"):
            images.append(to_uint8(batch))
            maps.append(g_maps)
        labels = pixel_labels(np.concatenate(images))
    else:
        real = world.render(n, seed, start=world.HELD_OUT_START)
        labels = label_masks(real)
        maps = []
        for i in range(0, n, batch_size):
            x = world.to_tensor(real.images[i:i + batch_size]).to(device)
            maps.append(spec.run(model, spec.preprocess(x))[1])
    return iou_table(name, collect(maps), labels, quantile)


@torch.no_grad()
def dissect_faces(name: str, weights: Mapping[str, str], generator: str, n: int, seed: int,
                  batch_size: int, quantile: float = QUANTILE, min_prob: float = MIN_PROB,
                  device: torch.device | str = "cpu") -> tuple[pd.DataFrame, int]:
    """Dissect a model of the faces zoo on `generator`'s n images (from seed) with their part
    masks (`core.faceparts`): the generator on its own maps, any other model on the images.
    Returns the IoU table and how many images O-Net found no face in (left out)."""
    if n < 1 or batch_size < 1:
        raise UserError(f"need images >= 1 and batch size >= 1, got {n} and {batch_size}")
    onet = models.load(LANDMARKS, weights.get(LANDMARKS), device)
    gan = models.load(generator, weights.get(generator), device)
    if gan[0].kind != models.GENERATOR:
        raise UserError(f"{generator} is not a generator: faces are dissected on a "
                        "generator's images")
    spec, model = (gan if name == generator else onet if name == LANDMARKS else
                   models.load(name, weights.get(name), device))
    maps, masks, dropped = [], {}, 0
    for _, _, images, g_maps in generated_batches(gan, seed, range(n), batch_size,
                                                  device=device, desc=f"dissect {name}"):
        kept, parts, _ = face_labels(onet, images, min_prob)
        own = g_maps if name == generator else spec.run(model, spec.preprocess(images))[1]
        rows = torch.from_numpy(kept).to(images.device)
        maps.append({layer: x[rows] for layer, x in own.items()})
        for label, m in parts.items():
            masks.setdefault(label, []).append(m)
        dropped += int((~kept).sum())
    if dropped == n:
        raise UserError(f"{LANDMARKS} found no face with probability >= {min_prob} in "
                        f"{generator}'s {n} images")
    labels = {label: np.concatenate(m) for label, m in masks.items()}
    return iou_table(name, collect(maps), labels, quantile), dropped


def read_dissection(path: str | Path) -> pd.DataFrame:
    """A dissection CSV as the dissect step writes it (COLUMNS)."""
    return read_table(path, "dissection", "dissect", COLUMNS, {"layer": str, "label": str})
