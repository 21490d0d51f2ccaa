"""The shapes world is deterministic per (seed, index) and its masks and labels match the pixels."""

import time

import numpy as np
import pytest
import torch

from rosetta_steps.core.world import COLORS, PALETTE_RGB, SHAPES, ShapesBatch, render, to_tensor


@pytest.fixture(scope="module")
def batch() -> ShapesBatch:
    return render(500, seed=7)


def test_types_and_shapes(batch):
    n = len(batch)
    assert batch.images.dtype == np.uint8 and batch.images.shape == (n, 64, 64, 3)
    assert batch.masks.dtype == bool and batch.masks.shape == (n, 3, 64, 64)
    assert batch.shape_ids.shape == batch.color_ids.shape == (n, 3)
    assert batch.shape_labels.shape == (n, len(SHAPES))
    assert batch.color_labels.shape == (n, len(COLORS))
    assert batch.shape_labels.dtype == batch.color_labels.dtype == np.float32
    x = to_tensor(batch.images[:4])
    assert x.dtype == torch.float32 and x.shape == (4, 3, 64, 64)
    assert x.min() >= -1 and x.max() <= 1
    assert abs(x[1, 2, 5, 9].item() - (batch.images[1, 5, 9, 2] / 127.5 - 1.0)) < 1e-6


def test_deterministic_and_index_addressable():
    a, b = render(10, seed=3), render(10, seed=3)
    for f in ("images", "masks", "shape_ids", "color_ids"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.images, render(10, seed=4).images)
    head, tail = render(4, seed=3), render(6, seed=3, start=4)
    for f in ("images", "masks", "shape_ids", "color_ids"):
        joined = np.concatenate([getattr(head, f), getattr(tail, f)])
        assert np.array_equal(getattr(a, f), joined), f
    # Image i is independent of the batch it is rendered in (chunk boundaries included).
    big = render(140, seed=3)
    assert np.array_equal(big.images[130:], render(10, seed=3, start=130).images)


def test_object_slots(batch):
    used = batch.shape_ids >= 0
    assert np.array_equal(used, batch.color_ids >= 0)
    count = used.sum(axis=1)
    assert count.min() == 1 and count.max() == 3
    assert set(np.unique(count)) == {1, 2, 3}
    # Slots are filled from the front.
    assert np.all(used[:, :-1] | ~used[:, 1:])
    assert np.all(batch.shape_ids < len(SHAPES)) and np.all(batch.color_ids < len(COLORS))
    assert not batch.masks[~used].any()
    assert batch.masks[:, 0].any(axis=(1, 2)).mean() > 0.9  # the first object is mostly seen
    assert batch.masks.sum(axis=1).max() <= 1  # visible masks are disjoint


def test_mask_pixels_have_object_colour(batch):
    img = batch.images.astype(np.float64)
    chroma_pal = PALETTE_RGB / PALETTE_RGB.sum(axis=1, keepdims=True)
    for k in range(3):
        b, y, x = np.nonzero(batch.masks[:, k])
        px = img[b, y, x]
        chroma = px / px.sum(axis=1, keepdims=True)
        dist = ((chroma[:, None, :] - chroma_pal[None]) ** 2).sum(axis=2)
        assert np.array_equal(dist.argmin(axis=1), batch.color_ids[b, k])
        # Only shading scales the palette colour: brightness within [0.7, 1.1] of it.
        scale = px.sum(axis=1) / PALETTE_RGB[batch.color_ids[b, k]].sum(axis=1)
        assert scale.min() > 0.65 and scale.max() < 1.15
    # Pixels outside every mask are background: muted, far from any saturated palette colour.
    bg = img[~batch.masks.any(axis=1)]
    assert (bg.max(axis=1) - bg.min(axis=1)).max() < 80


def test_labels_match_masks(batch):
    visible = batch.masks.any(axis=(2, 3))
    for i in range(len(batch)):
        shapes = {batch.shape_ids[i, k] for k in range(3) if visible[i, k]}
        colors = {batch.color_ids[i, k] for k in range(3) if visible[i, k]}
        assert set(np.flatnonzero(batch.shape_labels[i])) == shapes
        assert set(np.flatnonzero(batch.color_labels[i])) == colors
    assert np.all(batch.shape_labels.sum(axis=1) >= 1)
    assert np.all(batch.shape_labels.sum(axis=0) > 0), "every shape type appears"
    assert np.all(batch.color_labels.sum(axis=0) > 0), "every colour appears"


def test_render_speed():
    t = time.perf_counter()
    out = render(2000, seed=11)
    assert len(out) == 2000
    assert time.perf_counter() - t < 20
