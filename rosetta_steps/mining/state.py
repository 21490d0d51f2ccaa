"""The correlation accumulator's stores: one shard's float64 sufficient statistics (Eq. 1-2),
their exact merge into a (G, D) pair, and the pair's match store (`core.stores`).

A correlation state (`save_accumulator`, kind `correlation-state`) holds `cross`
(gan_unit, disc_unit), the per-unit shifted sums at native and partner resolutions, and the
layer layouts and image count in its attrs; with null permutations (`null`) also
`null_cross_1`, `null_cross_2`, ... and their number in attr `nulls`. `reduce_shards` merges
states of disjoint image shards, so the match store equals a single pass over all images;
`write_match_store` writes the observed store or, with `null`, a null one (attr `null`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from ..core.cli import UserError
from ..core.stores import open_store, unit_coords, write_dataset
from ..core.units import LayerSpec
from .correlation import CorrelationAccumulator
from .sums import SUMS

STATE_ARRAYS = ("cross", *(f"{side}_{name}" for side in ("gan", "disc") for name in SUMS))


def _specs_attr(specs: list[LayerSpec]) -> str:
    return json.dumps([[s.name, s.channels, s.size] for s in specs])


def _specs_from_attr(text: str) -> list[LayerSpec]:
    return [LayerSpec(str(n), int(c), int(s)) for n, c, s in json.loads(text)]


def save_accumulator(acc: CorrelationAccumulator, path: str | Path, **attrs: str) -> None:
    """Write an accumulator's state (one shard's statistics) to a Zarr store."""
    state = acc.state_dict()
    t = {k: v.cpu().numpy() for k, v in state["tensors"].items()}
    gan_res = sorted({s.size for s in state["gan_layers"]})
    disc_res = sorted({s.size for s in state["disc_layers"]})
    crosses = [k for k in t if k == "cross" or k.startswith("null_cross_")]
    data = {k: (("gan_unit", "disc_unit"), t.pop(k)) for k in crosses}
    for key, value in t.items():
        side = key.split("_", 1)[0]
        dims = (f"{side}_unit",) if value.ndim == 1 else (
            f"{side}_unit", "disc_res" if side == "gan" else "gan_res")
        data[key] = (dims, value)
    coords = {**unit_coords("gan", state["gan_layers"]),
              **unit_coords("disc", state["disc_layers"]),
              "gan_res": gan_res, "disc_res": disc_res}
    meta = {"kind": "correlation-state", "n_images": state["n_images"], "nulls": acc.nulls,
            "gan_layers": _specs_attr(state["gan_layers"]),
            "disc_layers": _specs_attr(state["disc_layers"]), **attrs}
    write_dataset(xr.Dataset(data, coords=coords, attrs=meta), path, matrices=tuple(crosses))


def load_accumulator(path: str | Path, acc: CorrelationAccumulator | None = None,
                     nulls: bool = True) -> CorrelationAccumulator:
    """Read a state written by `save_accumulator` into `acc` (a new one by default); without
    `nulls`, only the observed pairing (the null permutations are not read)."""
    ds = open_store(path, "correlation-state", "correlation state")
    nulls = int(ds.attrs.get("nulls", 0)) if nulls else 0
    arrays = [*STATE_ARRAYS, *(f"null_cross_{r}" for r in range(1, nulls + 1))]
    missing = sorted(set(arrays) - set(ds.data_vars))
    if missing:
        raise UserError(f"correlation state {path} lacks {', '.join(missing)}: the store is "
                        "damaged; delete it and rerun the match step that makes it")
    tensors = {}
    for name in arrays:
        values = np.asarray(ds[name].values)
        if not np.isfinite(values).all():
            raise UserError(f"correlation state {path}: {name} is not finite (a missing or "
                            "damaged chunk); delete it and rerun the match step that makes it")
        tensors[name] = torch.from_numpy(values)
    acc = acc if acc is not None else CorrelationAccumulator(nulls=nulls)
    try:
        acc.load_state_dict({"n_images": int(ds.attrs["n_images"]),
                             "gan_layers": _specs_from_attr(ds.attrs["gan_layers"]),
                             "disc_layers": _specs_from_attr(ds.attrs["disc_layers"]),
                             "tensors": tensors})
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise UserError(f"correlation state {path} does not hold what its attrs say "
                        f"({type(err).__name__}: {err}); rerun the match step") from None
    return acc


def write_match_store(acc: CorrelationAccumulator, path: str | Path, gan: str, disc: str,
                      dtype: type = np.float32, null: int = 0) -> None:
    """Write the correlation matrix and per-unit native statistics of `acc` (the match store);
    with `null` r >= 1, those of null permutation r (attr `null`)."""
    corr = acc.correlation(null=null).cpu().numpy().astype(dtype)
    data = {"corr": (("gan_unit", "disc_unit"), corr)}
    for side in ("gan", "disc"):
        mean, std = acc.native_stats(side)
        data[f"{side}_mean"] = (f"{side}_unit", mean.cpu().numpy())
        data[f"{side}_std"] = (f"{side}_unit", std.cpu().numpy())
    coords = {**unit_coords("gan", acc.gan.specs), **unit_coords("disc", acc.disc.specs)}
    attrs = {"kind": "matches", "gan": gan, "disc": disc, "n_images": acc.n_images,
             "gan_layers": _specs_attr(acc.gan.specs), "disc_layers": _specs_attr(acc.disc.specs)}
    if null:
        attrs["null"] = null
    write_dataset(xr.Dataset(data, coords=coords, attrs=attrs), path, matrices=("corr",))


class ShardRun(NamedTuple):
    """What `check_shards` learns of a run's shards."""

    gan: str
    disc: str
    nulls: int  # null permutations each shard holds
    paths: list  # the shards in image order (those without an image range last)


def check_shards(paths: Sequence[str | Path], images: int | None = None) -> ShardRun:
    """Shards merge only when they are of one run (models, seed, subset, layers, null
    permutations), hold disjoint images and, given `images`, together hold images
    0..images-1: one line naming the shards otherwise."""
    runs, spans = {}, []
    for p in paths:
        attrs = open_store(p, "correlation-state", "correlation shard").attrs
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


def reduce_shards(paths: Sequence[str | Path], device: str | torch.device = "cpu",
                  images: int | None = None, nulls: int = 0
                  ) -> tuple[CorrelationAccumulator, str, str]:
    """Merge shard states (checked to hold images 0..images-1 when `images` is given, and
    `nulls` null permutations); returns the merged accumulator and the (gan, disc) names."""
    if not paths:
        raise UserError("no shards given")
    run = check_shards(paths, images)
    if run.nulls != nulls:
        raise UserError(f"the shards hold {run.nulls} null permutations, and {nulls} null match "
                        f"stores are asked for: give one --null-out path per permutation")
    total = CorrelationAccumulator(device, nulls=nulls)
    for p in tqdm(paths, desc="reduce", unit="shard", disable=len(paths) < 2):
        try:
            total.merge(load_accumulator(p, CorrelationAccumulator(device, nulls=nulls)))
        except ValueError as err:
            raise UserError(f"shard {p} does not fit the others: {err}") from None
    return total, run.gan, run.disc
