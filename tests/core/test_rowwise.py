"""Stores written row block by row block: the same store whatever the blocks, complete or
absent."""

import numpy as np
import pytest
import xarray as xr

from rosetta_steps.core import stores
from rosetta_steps.core.rowwise import RowWiseStore
from rosetta_steps.core.stores import open_store


def small(rows: int) -> dict[str, bytes]:
    return stores.encode(xr.Dataset({"mean": ("gan_unit", np.arange(rows, dtype=float))}))


@pytest.mark.parametrize("cuts", [[0, 1000], [0, 300, 700, 1000], [0, 5, 600, 999, 1000]])
def test_blocks_in_order_or_not_give_the_same_store(tmp_path, monkeypatch, cuts):
    monkeypatch.setattr(stores, "SHARD_BYTES", 512 * 8 * 8)  # 512-row shards of 8 columns
    data = np.random.default_rng(0).normal(size=(1000, 8))
    written = {}
    for order in ("forward", "backward"):
        spans = list(zip(cuts, cuts[1:], strict=False))
        path = tmp_path / f"{order}-{len(cuts)}.zarr"
        with RowWiseStore(path, 1000, 8, {"m": np.float64}) as store:
            for lo, hi in spans if order == "forward" else spans[::-1]:
                store.write_rows("m", lo, data[lo:hi])
            store.finish(small(1000), {"kind": "test"})
        ds = open_store(path, "test")
        assert ds["m"].encoding["shards"] == (512, 8)
        np.testing.assert_array_equal(ds["m"].values, data)
        written[order] = ds
    assert written["forward"].attrs["kind"] == "test"


def test_an_unfinished_store_leaves_nothing(tmp_path):
    path = tmp_path / "s.zarr"
    with pytest.raises(ValueError, match="rows not written"):
        with RowWiseStore(path, 10, 2, {"m": np.float32}) as store:
            store.write_rows("m", 0, np.zeros((4, 2)))
            store.finish(small(10), {"kind": "test"})
    with pytest.raises(RuntimeError, match="before finish"):
        with RowWiseStore(path, 10, 2, {"m": np.float32}) as store:
            store.write_rows("m", 0, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="does not fit"):
        with RowWiseStore(path, 10, 2, {"m": np.float32}) as store:
            store.write_rows("m", 8, np.zeros((4, 2)))
    assert list(tmp_path.iterdir()) == []


def test_held_rows_do_not_alias_the_callers_block(tmp_path, monkeypatch):
    """Rows held for a shard file are taken without a copy when they are written at once,
    and copied when they are kept: a caller reusing its block changes nothing written."""
    monkeypatch.setattr(stores, "SHARD_BYTES", 512 * 8 * 8)
    data = np.random.default_rng(0).normal(size=(1000, 8))
    block = np.empty((500, 8))
    with RowWiseStore(tmp_path / "s.zarr", 1000, 8, {"m": np.float64}) as store:
        for lo in (0, 500):  # 500 rows: held for the first 512-row shard, then 12 rows kept
            block[:] = data[lo:lo + 500]
            store.write_rows("m", lo, block)
        block[:] = np.nan
        store.finish(small(1000), {"kind": "test"})
    np.testing.assert_array_equal(open_store(tmp_path / "s.zarr", "test")["m"].values, data)


def test_blocks_across_many_shard_files(tmp_path, monkeypatch):
    """Blocks that start inside a shard file and span several give the matrix unchanged."""
    monkeypatch.setattr(stores, "CHUNK_ROWS", 32)
    monkeypatch.setattr(stores, "SHARD_BYTES", 64 * 8 * 8)  # 64-row shards of 8 columns
    data = np.random.default_rng(1).normal(size=(1000, 8))
    cuts = [0, 10, 200, 201, 330, 384, 700, 1000]
    with RowWiseStore(tmp_path / "s.zarr", 1000, 8, {"m": np.float64}) as store:
        assert store.shard_rows("m") == 64
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            store.write_rows("m", lo, data[lo:hi].copy())
        store.finish(small(1000), {"kind": "test"})
    np.testing.assert_array_equal(open_store(tmp_path / "s.zarr", "test")["m"].values, data)
