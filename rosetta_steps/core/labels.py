"""Label masks of the shapes world, for dissection (NetDissect's IoU of units with concepts).

Real images of the world come with their ground truth (`world.ShapesBatch`): per pixel the
object slot, its shape and its colour. `label_masks` turns it into one boolean mask per
label: `colour:<c>` and `shape:<s>` (the visible pixels of such objects), `object`,
`background` and `contour` (the object pixels on a boundary: a 4-neighbour lies in another
object or in the background, a band one pixel wide at 64 px).

Generated images have no ground truth, so `pixel_labels` finds what the pixels alone show
honestly: the world paints objects in saturated palette colours on a muted background (chroma,
max - min of RGB, about 180 of 255 against at most about 60), so a pixel whose chroma exceeds
`OBJECT_CHROMA` is an object pixel (`object_mask`), coloured by its nearest palette colour;
`background` and `contour` follow. Shapes cannot be read off pixels this way and are left
out.
"""

from __future__ import annotations

import numpy as np

from .world import COLORS, PALETTE_RGB, SHAPES, ShapesBatch

OBJECT_CHROMA = 100  # of 255: between the background's ~60 and the palette's ~180


def object_mask(images: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, 3] -> bool [n, h, w]: the pixels of saturated (object) colour."""
    x = images.astype(np.int16)
    return (x.max(axis=-1) - x.min(axis=-1)) > OBJECT_CHROMA


def boundary(regions: np.ndarray) -> np.ndarray:
    """int [n, h, w] region ids (0: background) -> bool [n, h, w]: pixels of a region > 0 with
    a 4-neighbour in another region (the image border does not count)."""
    padded = np.pad(regions, ((0, 0), (1, 1), (1, 1)), mode="edge")
    centre = padded[:, 1:-1, 1:-1]
    differs = np.zeros(regions.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        differs |= padded[:, dy:dy + regions.shape[1], dx:dx + regions.shape[2]] != centre
    return differs & (regions > 0)


def _common(regions: np.ndarray) -> dict[str, np.ndarray]:
    return {"object": regions > 0, "background": regions == 0, "contour": boundary(regions)}


def label_masks(batch: ShapesBatch) -> dict[str, np.ndarray]:
    """The ground-truth label masks bool [n, 64, 64] of rendered images."""
    regions = np.zeros(batch.masks.shape[:1] + batch.masks.shape[2:], dtype=np.int64)
    for slot in range(batch.masks.shape[1]):
        regions[batch.masks[:, slot]] = slot + 1
    out = {}
    for prefix, names, ids in (("colour", COLORS, batch.color_ids),
                               ("shape", SHAPES, batch.shape_ids)):
        for k, name in enumerate(names):
            hit = ids == k  # [n, slots]
            out[f"{prefix}:{name}"] = (batch.masks & hit[:, :, None, None]).any(axis=1)
    return {**out, **_common(regions)}


def pixel_labels(images: np.ndarray) -> dict[str, np.ndarray]:
    """Label masks bool [n, h, w] found in the pixels of uint8 [n, h, w, 3] images alone."""
    objects = object_mask(images)
    distance = ((images[:, :, :, None, :].astype(np.float32) - PALETTE_RGB) ** 2).sum(-1)
    nearest = distance.argmin(axis=-1)  # [n, h, w]
    out = {f"colour:{name}": objects & (nearest == k) for k, name in enumerate(COLORS)}
    regions = np.where(objects, nearest + 1, 0)  # touching objects of one colour: one region
    return {**out, **_common(regions)}
