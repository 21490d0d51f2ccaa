"""A procedural "shapes world": the images a small model zoo is trained on and probed with.

Each 64x64 RGB image has a smooth two-colour gradient background with mild low-frequency
texture, and 1 to 3 flat-shaded objects (disk, square, triangle, ring) in one of six palette
colours, painted in order so that later objects occlude earlier ones. Every image comes with
the visible mask, shape and colour of each object slot, so units can be compared with
ground-truth concepts.

Image i of a seed depends only on (seed, i): its random numbers come from
``numpy.random.default_rng([seed, i])`` and everything after that is elementwise IEEE
arithmetic (directions are normalised Gaussian pairs, so no transcendental functions), hence
``render(10, s)`` is bit-identical to ``render(4, s)`` followed by ``render(6, s, start=4)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SIZE = 64
MAX_OBJECTS = 3
HELD_OUT_START = 1_000_000  # held-out images: indices of the world no training run draws
SHAPES = ("disk", "square", "triangle", "ring")
COLORS = ("red", "green", "blue", "yellow", "magenta", "cyan")
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (230, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
}
PALETTE_RGB = np.array([PALETTE[c] for c in COLORS], dtype=np.float32)  # [6, 3]

_COARSE = 8  # texture grid cells per side (9 x 9 corner values)
_TEXTURE_AMP = 9.0  # +- grey levels of background texture
_N_UNIFORM = 1 + 8 + (_COARSE + 1) ** 2 + 5 * MAX_OBJECTS  # per-image uniforms
_N_NORMAL = 2 + 4 * MAX_OBJECTS  # per-image Gaussian pairs -> unit directions
_CHUNK = 64

_AX = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)  # pixel centres
_X = _AX[None, None, :]
_Y = _AX[None, :, None]
_S3 = np.float32(np.sqrt(3.0) / 2.0)


@dataclass
class ShapesBatch:
    """Rendered images with per-object ground truth (slot k = k-th painted object)."""

    images: np.ndarray  # uint8 [n, 64, 64, 3]
    masks: np.ndarray  # bool [n, 3, 64, 64], visible pixels of each slot
    shape_ids: np.ndarray  # int64 [n, 3], index into SHAPES, -1 for unused slots
    color_ids: np.ndarray  # int64 [n, 3], index into COLORS, -1 for unused slots

    def __len__(self) -> int:
        return len(self.images)

    def _multi_hot(self, ids: np.ndarray, k: int) -> np.ndarray:
        visible = self.masks.any(axis=(2, 3))  # [n, 3]
        hit = (ids[:, :, None] == np.arange(k)) & visible[:, :, None]
        return hit.any(axis=1).astype(np.float32)

    @property
    def shape_labels(self) -> np.ndarray:
        """Multi-hot float32 [n, len(SHAPES)]: shapes with at least one visible pixel."""
        return self._multi_hot(self.shape_ids, len(SHAPES))

    @property
    def color_labels(self) -> np.ndarray:
        """Multi-hot float32 [n, len(COLORS)]: colours with at least one visible pixel."""
        return self._multi_hot(self.color_ids, len(COLORS))


def _unit(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (float32 x, y) from Gaussian pairs g[..., 2]: uniformly random directions."""
    norm = np.sqrt(g[:, 0] * g[:, 0] + g[:, 1] * g[:, 1]) + 1e-12
    return (g[:, 0] / norm).astype(np.float32), (g[:, 1] / norm).astype(np.float32)


def _col(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32)[:, None, None]


def _upsample(coarse: np.ndarray) -> np.ndarray:
    """Bilinear upsampling [b, 9, 9] -> [b, 64, 64] by gathers (exact, batch-independent)."""
    p = _AX / np.float32(SIZE / _COARSE)
    i0 = np.minimum(np.floor(p).astype(np.int64), _COARSE - 1)
    w = p - i0.astype(np.float32)
    rows = coarse[:, i0, :] * (1 - w)[:, None] + coarse[:, i0 + 1, :] * w[:, None]
    return rows[:, :, i0] * (1 - w) + rows[:, :, i0 + 1] * w


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray,
                c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Pixels inside one shape type; dx, dy [m, 64, 64] from its centre, r/c/s [m, 1, 1]."""
    if shape == 0:  # disk
        return dx * dx + dy * dy <= r * r
    if shape == 3:  # ring
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= np.float32(0.55**2) * r * r)
    u = c * dx + s * dy  # rotated frame
    v = c * dy - s * dx
    if shape == 1:  # square, half side 0.8 r
        return np.maximum(np.abs(u), np.abs(v)) <= np.float32(0.8) * r
    # equilateral triangle, circumradius 1.2 r, inradius 0.6 r
    lim = np.float32(0.6) * r
    return (v <= lim) & (_S3 * u - 0.5 * v <= lim) & (-_S3 * u - 0.5 * v <= lim)


def _render_chunk(un: np.ndarray, gn: np.ndarray) -> tuple[np.ndarray, ...]:
    b = len(un)
    n_obj = 1 + np.minimum((un[:, 0] * MAX_OBJECTS).astype(np.int64), MAX_OBJECTS - 1)

    # Background: muted, slightly tinted two-colour gradient along a random direction.
    grey = 70.0 + 120.0 * un[:, 1:3]
    tint = (un[:, 3:9].reshape(b, 2, 3) - 0.5) * 60.0
    ends = (grey[:, :, None] + tint).astype(np.float32)  # [b, 2, 3]
    gx, gy = _unit(gn[:, 0:2])
    half = np.float32(SIZE / 2)
    t = np.float32(0.5) + ((_X - half) * _col(gx) + (_Y - half) * _col(gy)) / np.float32(
        SIZE * np.sqrt(2.0))
    img = ends[:, None, None, 0] + (ends[:, None, None, 1] - ends[:, None, None, 0]) * t[..., None]
    n_c = (_COARSE + 1) ** 2
    coarse = ((un[:, 9:9 + n_c] - 0.5) * (2 * _TEXTURE_AMP)).astype(np.float32)
    img += _upsample(coarse.reshape(b, _COARSE + 1, _COARSE + 1))[..., None]

    inside = np.zeros((MAX_OBJECTS, b, SIZE, SIZE), dtype=bool)
    shape_ids = np.full((b, MAX_OBJECTS), -1, dtype=np.int64)
    color_ids = np.full((b, MAX_OBJECTS), -1, dtype=np.int64)
    for k in range(MAX_OBJECTS):
        o = 9 + n_c + 5 * k
        active = k < n_obj
        shape = np.minimum((un[:, o] * len(SHAPES)).astype(np.int64), len(SHAPES) - 1)
        color = np.minimum((un[:, o + 1] * len(COLORS)).astype(np.int64), len(COLORS) - 1)
        r = _col(7.0 + 7.0 * un[:, o + 2])
        cx = _col(9.0 + 46.0 * un[:, o + 3])
        cy = _col(9.0 + 46.0 * un[:, o + 4])
        rc, rs = _unit(gn[:, 2 + 4 * k:4 + 4 * k])
        sc, ss = _unit(gn[:, 4 + 4 * k:6 + 4 * k])
        for s in range(len(SHAPES)):
            idx = np.flatnonzero(active & (shape == s))
            if len(idx):
                inside[k, idx] = _shape_mask(s, _X - cx[idx], _Y - cy[idx], r[idx],
                                             _col(rc[idx]), _col(rs[idx]))
        # Paint the covered pixels with a linear brightness ramp, factor in [0.7, 1.1].
        bi, yi, xi = np.nonzero(inside[k])
        ramp = ((_AX[xi] - cx[bi, 0, 0]) * sc[bi] + (_AX[yi] - cy[bi, 0, 0]) * ss[bi]) / r[bi, 0, 0]
        shade = np.float32(0.9) + np.float32(0.2) * np.clip(ramp, -1.0, 1.0)
        img[bi, yi, xi] = PALETTE_RGB[color[bi]] * shade[:, None]
        shape_ids[active, k] = shape[active]
        color_ids[active, k] = color[active]

    masks = inside.copy()
    later = np.zeros((b, SIZE, SIZE), dtype=bool)
    for k in range(MAX_OBJECTS - 1, -1, -1):
        masks[k] &= ~later
        later |= inside[k]
    images = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return images, masks.transpose(1, 0, 2, 3), shape_ids, color_ids


def render(n: int, seed: int, start: int = 0) -> ShapesBatch:
    """Render images start .. start+n-1 of the world with this seed (each from (seed, i) only)."""
    if n < 0 or start < 0 or seed < 0:
        raise ValueError(f"n, seed and start must be non-negative: {n=}, {seed=}, {start=}")
    un = np.empty((n, _N_UNIFORM))
    gn = np.empty((n, _N_NORMAL))
    for j in range(n):
        rng = np.random.default_rng([seed, start + j])
        un[j] = rng.random(_N_UNIFORM)
        gn[j] = rng.standard_normal(_N_NORMAL)
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.empty((n, MAX_OBJECTS, SIZE, SIZE), dtype=bool)
    shape_ids = np.empty((n, MAX_OBJECTS), dtype=np.int64)
    color_ids = np.empty((n, MAX_OBJECTS), dtype=np.int64)
    for c0 in range(0, n, _CHUNK):
        c1 = min(n, c0 + _CHUNK)
        out = _render_chunk(un[c0:c1], gn[c0:c1])
        images[c0:c1], masks[c0:c1], shape_ids[c0:c1], color_ids[c0:c1] = out
    return ShapesBatch(images, masks, shape_ids, color_ids)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, 64, 64, 3] -> float32 tensor [n, 3, 64, 64] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x / 127.5 - 1.0).contiguous()
