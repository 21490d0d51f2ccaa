"""A (G, D) pair's shards merged into its match store (paper, Eq. 1-2), block by block.

Shards hold disjoint images and their states merge exactly (`CorrelationAccumulator.merge`), so
the match store equals a single pass over all images. The merge runs over row blocks of G units
(`blocks`) sized to what the job's memory budget leaves them (`budget`), so a self-match of
BigGAN-deep-256 (23296 units) needs a block of each shard at a time, not three whole 4.3 GB
matrices per shard. The match store (`MatchWriter`, `write_match_store`; kind `matches`,
`core.stores.open_match_store`) holds the correlations in float32 and each unit's mean and std
(Eq. 1); a null one holds those of a null permutation (attr `null`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from ..core.cli import UserError
from ..core.devices import to_host
from ..core.rowwise import RowWiseStore, RowWiseWriter
from ..core.stores import encode, store_attrs, unit_coords
from ..core.units import LayerSpec, unit_count
from .blocks import row_blocks
from .budget import reduce_overhead, state_share
from .correlation import CorrelationAccumulator
from .state import check_shards, load_accumulator, specs_attr, specs_from_attr

# States of a block alive at once: the total, a shard, and (a bound) the merge's and the
# correlations' temporaries.
COPIES = 6


class MatchWriter(RowWiseWriter):
    """A match store written block by block: `add` each block's accumulator at its first G
    row, then `finish`; with `null` r >= 1, the correlations of null permutation r."""

    def __init__(self, path: str | Path, gan_specs: list[LayerSpec],
                 disc_specs: list[LayerSpec], gan: str, disc: str, null: int = 0,
                 dtype: type = np.float32):
        self.gan_specs, self.disc_specs, self.null = gan_specs, disc_specs, null
        self.attrs = {"kind": "matches", "gan": gan, "disc": disc,
                      "gan_layers": specs_attr(gan_specs), "disc_layers": specs_attr(disc_specs)}
        if null:
            self.attrs["null"] = null
        rows, cols = unit_count(gan_specs), unit_count(disc_specs)
        self.store = RowWiseStore(path, rows, cols, {"corr": dtype})
        self.stats = {f"{side}_{k}": np.full(n, np.nan) for side, n in (("gan", rows),
                      ("disc", cols)) for k in ("mean", "std")}

    def add(self, start: int, acc: CorrelationAccumulator) -> None:
        corr = to_host(acc.correlation(null=self.null))
        self.store.write_rows("corr", start, corr.astype(self.store.matrices["corr"]))
        for side in ("gan", "disc"):
            mean, std = (v.cpu().numpy() for v in acc.native_stats(side))
            rows = slice(start, start + len(mean)) if side == "gan" else slice(None)
            self.stats[f"{side}_mean"][rows], self.stats[f"{side}_std"][rows] = mean, std
        self.attrs["n_images"] = acc.n_images

    def small(self) -> dict[str, bytes]:
        """The coords and per-unit statistics, encoded (`core.stores.encode`): the same for
        the observed pairing and its null permutations."""
        data = {k: (f"{k.split('_')[0]}_unit", v) for k, v in self.stats.items()}
        coords = {**unit_coords("gan", self.gan_specs), **unit_coords("disc", self.disc_specs)}
        return encode(xr.Dataset(data, coords=coords))

    def finish(self, small: dict[str, bytes] | None = None) -> None:
        """Write the rest of the store; `small`: this writer's, or another's of the pair."""
        self.store.finish(self.small() if small is None else small, self.attrs)


def write_match_store(acc: CorrelationAccumulator, path: str | Path, gan: str, disc: str,
                      dtype: type = np.float32, null: int = 0) -> None:
    """Write the correlation matrix and per-unit native statistics of `acc` (the match store);
    with `null` r >= 1, those of null permutation r (attr `null`)."""
    with MatchWriter(path, acc.gan.specs, acc.disc.specs, gan, disc, null, dtype) as writer:
        writer.add(0, acc)
        writer.finish()


def reduce_pair(paths: Sequence[str | Path], out: str | Path,
                null_out: Sequence[str | Path] = (), images: int | None = None,
                device: str | torch.device = "cpu", mem_mb: float = float("inf"),
                state_mb: float | None = None) -> tuple[str, str, int, int, int]:
    """Merge a pair's shard states (checked to hold images 0..images-1 when `images` is given)
    into its match store at `out` and one null match store per `null_out` path, in row blocks
    whose states fit what the job's other memory leaves of `mem_mb` (`budget`; `state_mb`
    sets that share instead); returns (gan, disc, gan units, disc units, images)."""
    if not paths:
        raise UserError("no shards given")
    run = check_shards(paths, images)
    nulls = len(null_out)
    if run.nulls != nulls:
        raise UserError(f"the shards hold {run.nulls} null permutations, and {nulls} null match "
                        f"stores are asked for: give one --null-out path per permutation")
    attrs = store_attrs(run.paths[0], "correlation-state", "correlation shard")
    gan_specs = specs_from_attr(attrs["gan_layers"])
    disc_specs = specs_from_attr(attrs["disc_layers"])
    rows, cols = unit_count(gan_specs), unit_count(disc_specs)
    if state_mb is None:
        state_mb = state_share(mem_mb, reduce_overhead(rows, cols, nulls))
    blocks = row_blocks(gan_specs, cols, nulls, state_mb, COPIES)
    with ExitStack() as stack:
        writers = [stack.enter_context(MatchWriter(p, gan_specs, disc_specs, run.gan, run.disc,
                                                   null=r))
                   for r, p in enumerate([out, *null_out])]
        bar = stack.enter_context(tqdm(total=len(blocks) * len(paths), desc="reduce",
                                       unit="shard", disable=len(paths) * len(blocks) < 2))
        for lo, hi in blocks:
            total = None
            for p in run.paths:
                shard = load_accumulator(p, CorrelationAccumulator(device, nulls=nulls),
                                         rows=(lo, hi))
                try:  # the first shard is the total so far; the others are added in place
                    total = shard if total is None else total.merge(shard, consume=True)
                except ValueError as err:
                    raise UserError(f"shard {p} does not fit the others: {err}") from None
                bar.update()
            for w in writers:
                w.add(lo, total)
        small = writers[0].small()  # one encoding for the pair's stores: only attrs differ
        for w in writers:
            w.finish(small)
    return run.gan, run.disc, rows, cols, total.n_images
