"""Brute-force float64 references for the tests: the definitions, written the slow way."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def flat_units(acts: dict[str, torch.Tensor], size: int) -> list[torch.Tensor]:
    """Every unit's maps over all images, bilinearly resized to `size`, flattened (float64)."""
    out = []
    for t in acts.values():
        t = t.to(torch.float64)
        if t.shape[-1] != size:
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
        out += [t[:, c].reshape(-1) for c in range(t.shape[1])]
    return out


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Two-pass Pearson correlation; 0 when either side is constant.

    A constant map stays constant when resized, but F.interpolate may round it by an ulp, so
    "constant" means a spread below float64 rounding of its magnitude.
    """
    if any(float(t.max() - t.min()) <= 1e-13 * float(t.abs().max()) for t in (x, y)):
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / torch.sqrt((x * x).sum() * (y * y).sum()))


def reference_correlation(gan: dict[str, torch.Tensor], disc: dict[str, torch.Tensor]
                          ) -> np.ndarray:
    """Eq. 2: upsample each pair of layers to the larger size, then the global Pearson."""
    rows = []
    for g in gan.values():
        row = []
        for d in disc.values():
            size = max(g.shape[-1], d.shape[-1])
            gu, du = flat_units({"g": g}, size), flat_units({"d": d}, size)
            row.append(np.array([[pearson(a, b) for b in du] for a in gu]))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def reference_best_buddies(corr: np.ndarray, k: int, rule: str = "mutual",
                           exclude_diagonal: bool = False) -> list[tuple[int, int]]:
    """Eq. 3 by sets: (j, q) iff q in KNN(j) and j in KNN(q) ('original': q is j's best)."""
    corr = np.array(corr, dtype=np.float64)
    if exclude_diagonal:
        np.fill_diagonal(corr, -np.inf)
    row_k = 1 if rule == "original" else k
    rows = [set(np.argsort(-corr[j])[:row_k]) for j in range(corr.shape[0])]
    cols = [set(np.argsort(-corr[:, q])[:k]) for q in range(corr.shape[1])]
    return sorted((j, q) for j in range(corr.shape[0]) for q in rows[j] if j in cols[q])


def random_acts(gen: torch.Generator, batch: int, layers: dict[str, tuple[int, int]],
                dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Random non-negative (ReLU-like) activations for layers name -> (channels, size)."""
    return {name: torch.relu(torch.randn(batch, c, s, s, generator=gen, dtype=dtype) + 0.3)
            for name, (c, s) in layers.items()}
