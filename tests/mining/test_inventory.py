"""A dictionary's inventory counts what its stores hold, by hand on small stores: units from
the layers, bytes from the files on disk, images from the sample stores; it refuses an
incomplete store and stores that are not one dictionary's mining, in one line."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.stores import write_dataset
from rosetta_steps.inventory import main
from rosetta_steps.mining.dissection import COLUMNS
from rosetta_steps.mining.inventory import inventory

GAN_LAYERS = [["stem", 4, 2], ["up", 2, 4]]  # 6 units


def match_store(path: Path, disc: str, images: int = 8, null: int | None = None) -> Path:
    layers = [["a", 3, 4], ["b", 5, 2]]  # 8 units
    attrs = {"kind": "matches", "gan": "g", "disc": disc, "n_images": images,
             "gan_layers": json.dumps(GAN_LAYERS), "disc_layers": json.dumps(layers),
             **({"null": null} if null else {})}
    write_dataset(xr.Dataset({"corr": (("gan_unit", "disc_unit"), np.ones((6, 8), "f4"))},
                             attrs=attrs), path)
    return path


def sample_store(path: Path, count: int) -> Path:
    write_dataset(xr.Dataset({"latent": (("image", "z"), np.zeros((count, 3), "f4"))},
                             attrs={"kind": "samples", "gan": "g", "count": count}), path)
    return path


def on_disk(*stores: Path) -> int:
    return sum(f.stat().st_size for s in stores for f in s.rglob("*") if f.is_file())


@pytest.fixture
def mined(tmp_path):
    d = tmp_path
    dissection = d / "d.csv"
    pd.DataFrame([["d", "a", 0, "colour:red", 0.2, 1.0, 0.0],
                  ["d", "a", 0, "shape:disk", 0.1, 1.0, 0.0],
                  ["d", "b", 3, "colour:red", 0.3, 1.0, 0.0]], columns=COLUMNS
                 ).to_csv(dissection, index=False)
    return {"matches": [match_store(d / "m-d.zarr", "d"), match_store(d / "m-g.zarr", "g")],
            "nulls": [match_store(d / f"n-d{r}.zarr", "d", null=r) for r in (1, 2)],
            "samples": [sample_store(d / "s0.zarr", 5), sample_store(d / "s1.zarr", 3)],
            "dissections": [dissection]}


def test_the_inventory_counts_units_images_and_bytes(mined):
    found = inventory("toy", **mined)
    m, n, s = mined["matches"], mined["nulls"], mined["samples"]
    assert found["generator"] == "g" and found["images"] == 8
    assert found["pairs"] == {
        "d": {"images": 8, "gan_units": 6, "disc_units": 8, "null_permutations": 2,
              "bytes": on_disk(m[0], *n)},
        "g": {"images": 8, "gan_units": 6, "disc_units": 8, "null_permutations": 0,
              "bytes": on_disk(m[1])}}
    assert found["samples"] == {"stores": 2, "images": 8, "bytes": on_disk(*s)}
    size = mined["dissections"][0].stat().st_size
    assert found["dissections"] == {"d": {"units": 2, "labels": 2, "bytes": size}}
    assert found["bytes"] == on_disk(*m, *n, *s) + size


def test_an_incomplete_store_is_refused(mined):
    chunk = next(p for p in (mined["nulls"][1] / "corr").rglob("*") if p.is_file()
                 and p.name != "zarr.json")
    chunk.unlink()
    with pytest.raises(UserError, match=r"n-d2.zarr is incomplete: corr/"):
        inventory("toy", **mined)


def test_stores_of_other_mining_are_refused(mined, tmp_path):
    other = match_store(tmp_path / "other.zarr", "e", images=16)
    with pytest.raises(UserError, match="other.zarr is g over 16 images, not g over 8"):
        inventory("toy", **{**mined, "matches": [*mined["matches"], other]})
    with pytest.raises(UserError, match="sample stores of toy hold 5 images, the match"):
        inventory("toy", **{**mined, "samples": mined["samples"][:1]})


def test_the_step_writes_json_and_says_one_line_on_bad_input(mined, tmp_path, capsys):
    out = tmp_path / "inventory.json"
    args = ["toy", "--matches", *map(str, mined["matches"]), "--nulls", *map(str, mined["nulls"]),
            "--samples", *map(str, mined["samples"]), "--out", str(out)]
    assert run(main, args) == 0
    assert json.loads(out.read_text()) == inventory("toy", **{**mined, "dissections": []})
    bad = tmp_path / "bad.json"
    assert run(main, [*args[:-1], str(bad), "--samples", str(mined["samples"][0])]) != 0
    assert not bad.exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
