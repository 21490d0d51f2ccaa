"""Writes are atomic: a failed write leaves neither a store nor its temporary folder."""

import pytest
import xarray as xr

from rosetta_steps.core.stores import atomic_output, open_store, write_dataset


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        (tmp / "partial").mkdir(parents=True)
        raise RuntimeError("killed half way")
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_the_old_store_whole(tmp_path):
    target = tmp_path / "s.zarr"
    write_dataset(xr.Dataset({"x": ("u", [1, 2, 3])}, attrs={"kind": "t"}), target)
    write_dataset(xr.Dataset({"y": ("u", [4, 5])}, attrs={"kind": "t"}), target)
    ds = open_store(target, "t")
    assert list(ds.data_vars) == ["y"]
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]
