"""Copies of a (G unit x D unit) matrix of the states of Eq. 1-2 (cross products,
correlations) between the accumulator's group order and the given unit order
(`sums.Side`), a run of consecutive units at a time.

The accumulator keeps units grouped by map size, but models mostly list their layers by size
already: BigGAN-deep-256's 23296 units and ViT-B/16's 36864 are each one run (the group order
is the given order), a ResNet's four stages four runs. Gathering a state by index tensors
moved 0.8 GB/s on 2 CPU cores (8 s for BigGAN-deep-256 x ViT-B/16's 6.9 GB when a match job
writes it, 13 s when `reduce` reads it back); copying whole runs moves the same bytes as
slices, at memory speed, and one run each way is a view that copies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class Run(NamedTuple):
    """`length` units consecutive in both orders: group positions `group`.. are given units
    `given`.."""

    group: int
    given: int
    length: int


def order_runs(order: Sequence[int] | torch.Tensor) -> list[Run]:
    """The maximal runs of `order` (group position -> given unit) that step by one."""
    o = torch.as_tensor(order).cpu()
    if len(o) == 0:
        return []
    starts = [0, *((o[1:] != o[:-1] + 1).nonzero().flatten() + 1).tolist()]
    stops = [*starts[1:], len(o)]
    return [Run(a, int(o[a]), b - a) for a, b in zip(starts, stops, strict=True)]


def in_order(*sides: list[Run]) -> bool:
    """Whether each side's group order is its given order (one run, or none)."""
    return all(len(runs) <= 1 for runs in sides)


def _given_window(runs: list[Run], lo: int, hi: int) -> list[tuple[slice, slice]]:
    """(group slice, slice of the window) of each run's part in given units lo .. hi-1."""
    parts = []
    for r in runs:
        a, b = max(r.given, lo), min(r.given + r.length, hi)
        if a < b:
            start = r.group + a - r.given
            parts.append((slice(start, start + b - a), slice(a - lo, b - lo)))
    return parts


def to_given(m: torch.Tensor, rows: list[Run], cols: list[Run], lo: int = 0,
             hi: int | None = None) -> torch.Tensor:
    """Given rows lo .. hi-1 (all by default) of `m` [group rows, group cols], every column
    in the given order: a view of `m` where both are one run, else a new tensor."""
    hi = m.shape[0] if hi is None else hi
    row_parts, col_parts = _given_window(rows, lo, hi), _given_window(cols, 0, m.shape[1])
    if len(row_parts) == 1 and len(col_parts) == 1:
        return m[row_parts[0][0], col_parts[0][0]]
    out = m.new_empty(hi - lo, m.shape[1])
    for g_rows, o_rows in row_parts:
        for g_cols, o_cols in col_parts:
            out[o_rows, o_cols] = m[g_rows, g_cols]
    return out


def to_group(value: torch.Tensor, rows: list[Run], cols: list[Run], out: torch.Tensor) -> None:
    """Copy `value` [given rows, given cols] into `out` in group order."""
    for r in rows:
        for c in cols:
            out[r.group:r.group + r.length, c.group:c.group + c.length] = \
                value[r.given:r.given + r.length, c.given:c.given + c.length]
