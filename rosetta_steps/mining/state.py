"""A shard's correlation state: its sufficient statistics (Eq. 1-2) in a store, and
the checks that a pair's shards merge (`reduction` merges them into the match store).

A correlation state (`StateWriter`, `save_accumulator`; kind `correlation-state`) holds
`cross` (gan_unit, disc_unit), each side's per-unit shifted sums (`sums.SUMS`) packed in two
arrays, `{side}_sums` (units, stat: those at the unit's own size) and `{side}_partner_sums`
(units, partner resolution, moment), whose attr `sums` names their last axis, and the layer
layouts and image count in its attrs; with null permutations (`null`) also `null_cross_1`,
`null_cross_2`, ... and their number in attr `nulls`. The null matrices are float32
(`correlation.NULL`), the rest float64. It has no coordinate arrays: the units and
resolutions follow from the layouts, and zarr's cost is per array (a state's 18 small
arrays took 93 ms to encode, its 4 now take 25). A state written before, with float64 nulls
or a sum an array, still reads. It is written and read whole or in row blocks of G units
(`blocks`), which give the same store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from ..core.cli import UserError
from ..core.devices import to_host
from ..core.rowwise import RowWiseStore, RowWiseWriter
from ..core.stores import CHUNK_ROWS, encode, open_store, store_attrs
from ..core.units import LayerSpec, unit_count
from .blocks import block_specs
from .correlation import CorrelationAccumulator
from .order import in_order, to_given
from .sums import PARTNER_SUMS, SUMS

NATIVE_SUMS = tuple(name for name in SUMS if name not in PARTNER_SUMS)
PACKED = {"sums": NATIVE_SUMS, "partner_sums": PARTNER_SUMS}  # array suffix -> its sums
SIDES = ("gan", "disc")
UNPACKED = tuple(f"{side}_{name}" for side in SIDES for name in SUMS)  # a state before PACKED


def specs_attr(specs: list[LayerSpec]) -> str:
    return json.dumps([[s.name, s.channels, s.size] for s in specs])


def specs_from_attr(text: str) -> list[LayerSpec]:
    return [LayerSpec(str(n), int(c), int(s)) for n, c, s in json.loads(text)]


class StateWriter(RowWiseWriter):
    """A shard's correlation state written block by block (`blocks`): `add` each block's
    accumulator at its first G row, then `finish`; the store appears only when complete.

        with StateWriter(path, gan_specs, disc_specs, nulls, gan="G", disc="D") as writer:
            writer.add(0, acc)
            writer.finish()
    """

    def __init__(self, path: str | Path, gan_specs: list[LayerSpec],
                 disc_specs: list[LayerSpec], nulls: int, **attrs: str):
        self.gan_specs, self.disc_specs = gan_specs, disc_specs
        self.nulls, self.attrs = nulls, attrs
        rows, cols = unit_count(gan_specs), unit_count(disc_specs)
        self.gan_res = sorted({s.size for s in gan_specs})
        self.disc_res = sorted({s.size for s in disc_specs})
        self.crosses = ["cross", *(f"null_cross_{r}" for r in range(1, nulls + 1))]
        self.store = RowWiseStore(path, rows, cols, {  # the accumulator's dtypes
            "cross": np.float64, **dict.fromkeys(self.crosses[1:], np.float32)})
        # per side: (units, partner resolutions) for the sums at partner sizes, else (units,)
        shapes = {"gan": (rows, len(self.disc_res)), "disc": (cols, len(self.gan_res))}
        self.sums = {f"{side}_{name}": np.full(shape if name in PARTNER_SUMS else shape[:1],
                                               np.nan)
                     for side, shape in shapes.items() for name in SUMS}
        self.n_images: int | None = None

    def add(self, start: int, acc: CorrelationAccumulator) -> None:
        """The rows of G units start .. start + acc's G units - 1."""
        if self.n_images not in (None, acc.n_images):
            raise ValueError(f"blocks of {self.n_images} and {acc.n_images} images")
        self.n_images = acc.n_images
        block = [spec for spec, _, _ in block_specs(self.gan_specs, start,
                                                    start + acc.gan.n_units)]
        if acc.gan.specs != block or acc.disc.specs != self.disc_specs:
            raise ValueError(f"the maps' layers ({acc.gan.specs}, {acc.disc.specs}) are not "
                             f"those of the store ({block}, {self.disc_specs})")
        matrices = [acc.cross, *acc.null_cross]
        # In the given order: a chunk of rows copied at a time, or, where the state's rows
        # are views of host memory (one run each way), a shard file's rows written from it.
        views = in_order(acc.gan.runs, acc.disc.runs) and acc.cross.device.type == "cpu"
        step = self.store.shard_rows("cross") if views else CHUNK_ROWS
        stop = start + acc.gan.n_units
        edges = [start, *range((start // step + 1) * step, stop, step), stop]
        for lo, hi in zip(edges, edges[1:], strict=False):
            for name, m in zip(self.crosses, matrices, strict=True):
                block = to_given(m, acc.gan.runs, acc.disc.runs, lo - start, hi - start)
                self.store.write_rows(name, lo, to_host(block))
        rows = slice(start, start + acc.gan.n_units)
        columns = [self.gan_res.index(s) for s in acc.disc.partner_sizes]
        gan, disc = acc.gan.state(), acc.disc.state()  # D's sums: those at the block's sizes
        for name in SUMS:
            self.sums[f"gan_{name}"][rows] = gan[name].cpu().numpy()
            if name in PARTNER_SUMS:
                self.sums[f"disc_{name}"][:, columns] = disc[name].cpu().numpy()
            else:
                self.sums[f"disc_{name}"][:] = disc[name].cpu().numpy()

    def finish(self) -> None:
        data = {}
        for side, partner_res in zip(SIDES, ("disc_res", "gan_res"), strict=True):
            for suffix, names in PACKED.items():
                dims = (f"{side}_unit", "stat") if suffix == "sums" else (
                    f"{side}_unit", partner_res, "moment")
                values = np.stack([self.sums[f"{side}_{n}"] for n in names], axis=-1)
                data[f"{side}_{suffix}"] = (dims, values, {"sums": list(names)})
        meta = {"kind": "correlation-state", "n_images": self.n_images, "nulls": self.nulls,
                "gan_layers": specs_attr(self.gan_specs),
                "disc_layers": specs_attr(self.disc_specs), **self.attrs}
        self.store.finish(encode(xr.Dataset(data)), meta)


def save_accumulator(acc: CorrelationAccumulator, path: str | Path, **attrs: str) -> None:
    """Write an accumulator's state (one shard's statistics) to a Zarr store."""
    with StateWriter(path, acc.gan.specs, acc.disc.specs, acc.nulls, **attrs) as writer:
        writer.add(0, acc)
        writer.finish()


def load_accumulator(path: str | Path, acc: CorrelationAccumulator | None = None,
                     nulls: bool = True, rows: tuple[int, int] | None = None
                     ) -> CorrelationAccumulator:
    """Read a state written by `save_accumulator` into `acc` (a new one by default); without
    `nulls`, only the observed pairing (the null permutations are not read); with `rows`
    (start, stop), only the block of those G units (`blocks`)."""
    ds = open_store(path, "correlation-state", "correlation state")
    nulls = int(ds.attrs.get("nulls", 0)) if nulls else 0
    packed = [f"{side}_{suffix}" for side in SIDES for suffix in PACKED]
    sums = packed if packed[0] in ds.data_vars else UNPACKED
    arrays = ["cross", *sums, *(f"null_cross_{r}" for r in range(1, nulls + 1))]
    missing = sorted(set(arrays) - set(ds.data_vars))
    if missing:
        raise UserError(f"correlation state {path} lacks {', '.join(missing)}: the store is "
                        "damaged; delete it and rerun the match step that makes it")
    try:
        gan_layers = specs_from_attr(ds.attrs["gan_layers"])
        disc_layers = specs_from_attr(ds.attrs["disc_layers"])
        if rows is not None:
            gan_res = sorted({s.size for s in gan_layers})
            gan_layers = [spec for spec, _, _ in block_specs(gan_layers, *rows)]
            sizes = {s.size for s in gan_layers}
            ds = ds.isel(gan_unit=slice(*rows),
                         gan_res=[i for i, r in enumerate(gan_res) if r in sizes])
        tensors = {}
        for name in arrays:
            values = np.asarray(ds[name].values)
            if not np.isfinite(values).all():
                raise UserError(f"correlation state {path}: {name} is not finite (a missing or "
                                "damaged chunk); delete it and rerun the match step that makes "
                                "it")
            if name in packed:
                side = name.split("_", 1)[0]
                tensors.update({f"{side}_{n}": torch.from_numpy(values[..., i].copy())
                                for i, n in enumerate(ds[name].attrs["sums"])})
            else:
                tensors[name] = torch.from_numpy(values)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise UserError(f"correlation state {path} does not hold what its attrs say "
                        f"({type(err).__name__}: {err}); rerun the match step") from None
    acc = acc if acc is not None else CorrelationAccumulator(nulls=nulls)
    try:
        acc.load_state_dict({"n_images": int(ds.attrs["n_images"]), "gan_layers": gan_layers,
                             "disc_layers": disc_layers, "tensors": tensors}, copy=False)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise UserError(f"correlation state {path} does not hold what its attrs say "
                        f"({type(err).__name__}: {err}); rerun the match step") from None
    return acc


class ShardRun(NamedTuple):
    """What `check_shards` learns of a run's shards."""

    gan: str
    disc: str
    nulls: int  # null permutations each shard holds
    paths: list  # the shards in image order (those without an image range last)


def check_shards(paths: Sequence[str | Path], images: int | None = None) -> ShardRun:
    """Shards merge only when they are of one run (models, seed, subset, layers, null
    permutations), hold disjoint images and, given `images`, together hold images
    0..images-1: one line naming the shards otherwise. A shard given twice (by any path to it)
    is refused whether or not it records its image range."""
    seen: dict[Path, str | Path] = {}
    for p in paths:
        if (same := seen.setdefault(Path(p).resolve(), p)) is not p:
            raise UserError(f"shard {p} is given twice (also as {same}): give each shard once")
    runs, spans = {}, []
    for p in paths:
        attrs = store_attrs(p, "correlation-state", "correlation shard")
        run = tuple(str(attrs.get(k)) for k in ("gan", "disc", "seed", "subset", "gan_layers",
                                                 "disc_layers")) + (str(attrs.get("nulls", 0)),)
        runs.setdefault(run, []).append(str(p))
        if "start" in attrs and "count" in attrs:
            spans.append((int(attrs["start"]), int(attrs["start"]) + int(attrs["count"]), p))
    if len(runs) > 1:
        first, other = list(runs.values())[:2]
        raise UserError(f"shards {first[0]} and {other[0]} come from different runs (models, "
                        "seed, subset, layers or null permutations differ): reduce the shards "
                        "of one run")
    spans.sort(key=lambda s: (s[0], s[1]))
    for (_, stop, a), (start, _, b) in zip(spans, spans[1:], strict=False):
        if start < stop:
            raise UserError(f"shards {a} and {b} overlap (images {start}..{stop - 1} twice): "
                            "give each image's shard once")
    if images is not None:
        check_coverage(spans, len(paths), images)
    run = next(iter(runs))
    ordered = [p for _, _, p in spans]
    return ShardRun(run[0], run[1], int(run[-1]),
                    ordered + [p for p in paths if p not in ordered])


def check_coverage(spans: list[tuple[int, int, str | Path]], shards: int, images: int) -> None:
    """Sorted, disjoint (start, stop, shard) spans hold exactly images 0..images-1."""
    if len(spans) < shards:
        raise UserError(f"some shards lack their image range (attrs start and count), so they "
                        f"cannot be checked to hold images 0..{images - 1}: rewrite them")
    held, gaps = 0, []
    for start, stop, _ in spans:
        if start > held:
            gaps.append(f"{held}..{start - 1}")
        held = max(held, stop)
    if held < images:
        gaps.append(f"{held}..{images - 1}")
    problems = [f"images {', '.join(gaps)} have no shard"] if gaps else []
    if held > images:
        problems.append(f"images {images}..{held - 1} are beyond them")
    if problems:
        raise UserError(f"the shards do not hold images 0..{images - 1} exactly: "
                        f"{'; '.join(problems)}")
