"""Writes are atomic: a failed write leaves neither a store nor its temporary folder; a store
holds the files xarray writes; its attrs alone are read with the checks of a whole open."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rosetta_steps.core.cli import UserError
from rosetta_steps.core.stores import (
    FILES,
    atomic_output,
    open_store,
    store_attrs,
    write_dataset,
)


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


def test_a_written_store_has_the_files_xarray_writes_byte_for_byte(tmp_path):
    units = 300
    ds = xr.Dataset(
        {"mean": ("u", np.where(np.arange(units) % 7, np.linspace(-1, 1, units), np.nan)),
         "pixels": (("image", "y"), np.arange(40, dtype=np.uint8).reshape(4, 10))},
        coords={"layer": ("u", np.array([f"block{i // 100}" for i in range(units)],
                                        dtype=object)),
                "channel": ("u", np.arange(units))},
        attrs={"kind": "t", "n_images": 4, "gan_layers": "[[\"a\", 3, 8]]"})
    encoding = {"pixels": {"chunks": (2, 10)}}
    write_dataset(ds, tmp_path / "ours.zarr", encoding=encoding)
    ds.to_zarr(tmp_path / "xarray.zarr", zarr_format=3, consolidated=False, encoding=encoding)
    ours, theirs = (sorted(p.relative_to(tmp_path / name) for p in
                           (tmp_path / name).rglob("*") if p.is_file())
                    for name in ("ours.zarr", "xarray.zarr"))
    assert ours == theirs and len(ours) == 10  # pixels in 2 chunks
    for name in ours:
        if name != Path("zarr.json"):
            assert (tmp_path / "ours.zarr" / name).read_bytes() == \
                   (tmp_path / "xarray.zarr" / name).read_bytes(), name
    read = open_store(tmp_path / "ours.zarr", "t")
    assert read.attrs.pop(FILES) == {str(p): (tmp_path / "ours.zarr" / p).stat().st_size
                                     for p in ours if p != Path("zarr.json")}
    xr.testing.assert_identical(read.load(), ds)


DAMAGES = {
    "a missing file": lambda s: (s / "mean" / "c" / "0").unlink(),
    "a shortened file": lambda s: (s / "mean" / "c" / "0").write_bytes(b"short"),
    "unreadable root metadata": lambda s: (s / "zarr.json").write_text("not json"),
    "no store": lambda s: shutil.rmtree(s),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_store_attrs_refuses_what_open_store_refuses(tmp_path, damage):
    store = tmp_path / "s.zarr"
    write_dataset(xr.Dataset({"mean": ("u", [1.0, 2.0])}, attrs={"kind": "t"}), store)
    assert store_attrs(store, "t")["kind"] == "t"
    DAMAGES[damage](store)
    messages = []
    for read in (open_store, store_attrs):
        with pytest.raises(UserError) as err:
            read(store, "t", "test store")
        messages.append(str(err.value))
    assert messages[0] == messages[1] and str(store) in messages[0]


def test_store_attrs_refuses_another_kind(tmp_path):
    write_dataset(xr.Dataset({"x": ("u", [1])}, attrs={"kind": "samples"}), tmp_path / "s.zarr")
    with pytest.raises(UserError, match="is not a matches store"):
        store_attrs(tmp_path / "s.zarr", "matches")
