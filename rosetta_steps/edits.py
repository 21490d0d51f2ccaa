"""Edits of a generated image's activation maps (Sec. 4.2 of the paper), before the latent is
re-optimised to match them (`inversion`, Eq. 5).

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

import torch
import torch.nn.functional as F

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
