"""Row blocks of a correlation state: G's units cut into contiguous ranges so that a state
larger than the memory budget is accumulated, merged and written one block at a time.

Every statistic of Eq. 1-2 for a G unit (its sums, its row of cross products against every
D unit) depends only on that unit's maps and all of D's, so a block of G rows accumulated
alone is the same computation as those rows of the whole state: blocks are exact, and
`tests/mining/test_blocks.py` checks that a blocked state equals the dense one. A block is
given to the accumulator as G's maps restricted to its units (`block_maps`), layers cut at
the block's edges keeping their names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..core.cli import UserError
from ..core.units import LayerSpec, unit_count
from .correlation import NULL
from .sums import STATE

MB = 2**20
ALIGN = 512  # rows: blocks of whole stored chunks (`core.stores.CHUNK_ROWS`) when they can be
TILE = 64  # rows: else a multiple of any GEMM kernel's row tile, when that fits


def block_specs(specs: Sequence[LayerSpec], start: int, stop: int
                ) -> list[tuple[LayerSpec, int, int]]:
    """The layers of units start .. stop-1 (in the given unit order): per layer that has
    some, (its spec restricted to them, first channel, last channel + 1)."""
    out, first = [], 0
    for spec in specs:
        lo, hi = max(start - first, 0), min(stop - first, spec.channels)
        if lo < hi:
            out.append((LayerSpec(spec.name, hi - lo, spec.size), lo, hi))
        first += spec.channels
    return out


def block_maps(maps: Mapping[str, torch.Tensor], specs: Sequence[LayerSpec], start: int,
               stop: int) -> dict[str, torch.Tensor]:
    """G's maps {layer: [batch, channels, s, s]} restricted to units start .. stop-1 (views)."""
    if start == 0 and stop == unit_count(specs):
        return dict(maps)
    return {spec.name: maps[spec.name][:, lo:hi] for spec, lo, hi in
            block_specs(specs, start, stop)}


def row_bytes(cols: int, nulls: int, copies: float = 1.5) -> float:
    """Bytes of one G row of `copies` states over `cols`: the observed matrix (float64) and
    `nulls` null permutations' (float32, `correlation.NULL`)."""
    return copies * (STATE.itemsize + nulls * NULL.itemsize) * cols


def row_blocks(specs: Sequence[LayerSpec], cols: int, nulls: int, budget_mb: float,
               copies: float = 1.5) -> list[tuple[int, int]]:
    """(start, stop) of G's row blocks whose states fit `budget_mb`: all rows when they fit,
    else runs of whole layers, a layer too large alone cut into multiples of ALIGN or TILE
    rows (or what fits). Cuts at layer boundaries and whole tiles keep each GEMM's row tiles
    where the dense state has them, so the blocks' sums are the dense ones bit for bit (as
    tested here); other cuts round differently in the last bits. One line when not even a
    row fits."""
    per_row, budget = row_bytes(cols, nulls, copies), budget_mb * MB
    rows = unit_count(specs)
    if budget >= rows * per_row:
        return [(0, rows)]
    fit = int(budget // per_row)
    if fit < 1:
        raise UserError(f"a memory budget of {budget_mb:g} MB holds no row of a {rows} x {cols} "
                        f"correlation state ({per_row / MB:.1f} MB a row): raise mem_mb")
    blocks, first = [], 0
    for spec in specs:
        lo, hi = first, first + spec.channels
        if blocks and blocks[-1][1] == lo and hi - blocks[-1][0] <= fit:
            blocks[-1] = (blocks[-1][0], hi)  # the layer joins the open block
        elif spec.channels <= fit:
            blocks.append((lo, hi))
        else:
            step = fit // ALIGN * ALIGN or fit // TILE * TILE or fit
            blocks += [(r, min(r + step, hi)) for r in range(lo, hi, step)]
        first = hi
    return blocks


def plan_passes(specs: Sequence[LayerSpec], cols: Sequence[int], nulls: int,
                budget_mb: float) -> list[list[tuple[int, int, int]]]:
    """Blocks (pair, start, stop) of pairs of G (layers `specs`) with cols[i] units on the
    other side, packed in order into passes whose states together fit `budget_mb`: each pass
    is one forward pass of G over the shard's images, so everything fits one pass when it
    can."""
    passes, used = [[]], 0.0
    for pair, n in enumerate(cols):
        for lo, hi in row_blocks(specs, n, nulls, budget_mb):
            size = (hi - lo) * row_bytes(n, nulls) / MB
            if passes[-1] and used + size > budget_mb:
                passes.append([])
                used = 0.0
            passes[-1].append((pair, lo, hi))
            used += size
    return [p for p in passes if p]
