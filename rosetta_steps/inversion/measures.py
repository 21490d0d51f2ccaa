"""What an inversion or an edit did, measured: image similarity for Table 1 (PSNR, SSIM),
objects and concepts for the edits of Sec. 4.2 (confidence intervals: `core.intervals`).

- Objects are found in the pixels, independently of every model (`core.labels.object_mask`:
  saturated palette colours on a muted background); `centroid`, `area` and `count` describe
  such masks. The same edit
  applied to the mask of the original image says what a perfect edit would give.
- A concept's activation in an image is the mean over its G units of the pixel mean of the
  positive part of the unit's z-scored map, with the mining statistics of Eq. 1: how much
  more than on an average image the concept is present. Removal aims it at zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.metrics import structural_similarity

MIN_OBJECT_PIXELS = 4  # smaller specks of colour are not counted as objects


def centroid(mask: np.ndarray) -> np.ndarray:
    """bool [n, h, w] -> [n, 2]: the (x, y) centre in pixels of each mask, NaN when empty."""
    ys, xs = np.mgrid[:mask.shape[1], :mask.shape[2]]
    count = mask.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(mask * xs).sum(axis=(1, 2)) / count,
                         (mask * ys).sum(axis=(1, 2)) / count], axis=1)


def area(mask: np.ndarray) -> np.ndarray:
    """bool [n, h, w] -> [n]: the share of each image's pixels in the mask."""
    return mask.mean(axis=(1, 2))


def count(mask: np.ndarray) -> np.ndarray:
    """bool [n, h, w] -> [n]: connected regions of at least `MIN_OBJECT_PIXELS` pixels."""
    counts = []
    for m in mask:
        labels, n = ndimage.label(m)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        counts.append(int((sizes >= MIN_OBJECT_PIXELS).sum()))
    return np.asarray(counts)


def concept_map(maps: Mapping[str, torch.Tensor], units: Sequence[tuple[str, int]],
                stats: Mapping[tuple[str, int], tuple[float, float]], side: int) -> np.ndarray:
    """[n, side, side]: the mean of a concept's z-scored unit maps, bilinearly resized."""
    total = 0.0
    for layer, channel in units:
        mean, std = stats[(layer, channel)]
        x = maps[layer][:, channel:channel + 1].detach().float()
        z = (x - mean) / std if std > 0 else torch.zeros_like(x)
        total = total + F.interpolate(z, size=(side, side), mode="bilinear",
                                      align_corners=False)
    return (total / len(units))[:, 0].cpu().numpy()


def concept_activation(maps: Mapping[str, torch.Tensor],
                       concepts: Mapping[int, Sequence[tuple[str, int]]],
                       stats: Mapping[tuple[str, int], tuple[float, float]]) -> np.ndarray:
    """[n, len(concepts)]: each concept's activation in each image (see the module doc)."""
    columns = []
    for units in concepts.values():
        total = 0.0
        for layer, channel in units:
            mean, std = stats[(layer, channel)]
            x = maps[layer][:, channel].detach().double()
            z = (x - mean) / std if std > 0 else torch.zeros_like(x)
            total = total + z.clamp(min=0).mean(dim=(1, 2))
        columns.append(total / len(units))
    return torch.stack(columns, dim=1).cpu().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 [h, w, 3] images (scikit-image, Gaussian window as Wang et al.)."""
    return float(structural_similarity(a, b, channel_axis=2, data_range=255,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))
