"""Shards reduce exactly into the match store; the store has the documented layout."""

import numpy as np
import torch
import xarray as xr
from reference import random_acts

from rosetta_steps import reduce
from rosetta_steps.core.cli import run
from rosetta_steps.core.stores import unit_coords, write_dataset
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.state import load_accumulator, save_accumulator, specs_attr

GAN = {"b0": (4, 4), "b1": (3, 16)}
DISC = {"layer1": (5, 14), "layer2": (2, 7)}


def shard(seed):
    gen = torch.Generator().manual_seed(seed)
    acc = CorrelationAccumulator(device="cpu")
    batches = [(random_acts(gen, 5, GAN), random_acts(gen, 5, DISC)) for _ in range(2)]
    for g, d in batches:
        acc.update(g, d)
    return acc, batches


def test_reduce_equals_one_pass(tmp_path):
    parts = [shard(s) for s in range(3)]
    for i, (acc, _) in enumerate(parts):
        save_accumulator(acc, tmp_path / f"s{i}.zarr", gan="G", disc="D")
    out = tmp_path / "matches.zarr"
    argv = [*(str(tmp_path / f"s{i}.zarr") for i in range(3)), "--out", str(out)]
    assert run(reduce.main, argv) == 0

    whole = CorrelationAccumulator(device="cpu")
    for _, batches in parts:
        for g, d in batches:
            whole.update(g, d)
    ds = xr.open_zarr(out, consolidated=False)
    assert ds["corr"].dims == ("gan_unit", "disc_unit")
    assert (ds.attrs["gan"], ds.attrs["disc"], ds.attrs["n_images"]) == ("G", "D", 30)
    assert ds["gan_layer"].values.tolist() == ["b0"] * 4 + ["b1"] * 3
    assert ds["disc_channel"].values.tolist() == [0, 1, 2, 3, 4, 0, 1]
    np.testing.assert_allclose(ds["corr"].values, whole.correlation().numpy(), atol=1e-7)
    mean, std = whole.native_stats("gan")
    np.testing.assert_allclose(ds["gan_mean"].values, mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ds["gan_std"].values, std.numpy(), rtol=1e-12)


def test_reduce_refuses_mixed_pairs_and_missing_shards(tmp_path, capsys):
    save_accumulator(shard(0)[0], tmp_path / "a.zarr", gan="G", disc="D")
    save_accumulator(shard(1)[0], tmp_path / "b.zarr", gan="G", disc="E")
    out = tmp_path / "m.zarr"
    assert run(reduce.main, [str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"),
                             "--out", str(out)]) == 2
    assert "come from different runs" in capsys.readouterr().err
    assert run(reduce.main, [str(tmp_path / "a.zarr"), str(tmp_path / "c.zarr"),
                             "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_reduce_refuses_a_shard_given_twice_though_it_has_no_image_range(tmp_path, capsys):
    save_accumulator(shard(0)[0], tmp_path / "a.zarr", gan="G", disc="D")
    (tmp_path / "link.zarr").symlink_to(tmp_path / "a.zarr")
    out = tmp_path / "m.zarr"
    for twice in (tmp_path / "a.zarr", tmp_path / "." / "a.zarr", tmp_path / "link.zarr"):
        assert run(reduce.main, [str(tmp_path / "a.zarr"), str(twice), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is given twice" in err, err
    assert not out.exists()


def test_a_state_round_trips_through_zarr_and_merges_after(tmp_path):
    (a, _), (b, _) = shard(0), shard(1)
    save_accumulator(a, tmp_path / "a.zarr", gan="G", disc="D")
    save_accumulator(b, tmp_path / "b.zarr", gan="G", disc="D")
    loaded = load_accumulator(tmp_path / "a.zarr", CorrelationAccumulator(device="cpu"))
    np.testing.assert_array_equal(loaded.correlation().numpy(), a.correlation().numpy())
    loaded.merge(load_accumulator(tmp_path / "b.zarr", CorrelationAccumulator(device="cpu")))
    np.testing.assert_allclose(loaded.correlation().numpy(), a.merge(b).correlation().numpy(),
                               rtol=0, atol=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _old_layout(acc, path):
    """`acc`'s state as states were written before their sums were packed: a sum an array,
    with unit and resolution coords."""
    tensors = acc.state_dict()["tensors"]
    gan_res = sorted({s.size for s in acc.gan.specs})
    disc_res = sorted({s.size for s in acc.disc.specs})
    data = {"cross": (("gan_unit", "disc_unit"), tensors.pop("cross").numpy())}
    for key, value in tensors.items():
        side = key.split("_", 1)[0]
        dims = (f"{side}_unit", "disc_res" if side == "gan" else "gan_res")
        data[key] = (dims[:value.ndim], value.numpy())
    coords = {**unit_coords("gan", acc.gan.specs), **unit_coords("disc", acc.disc.specs),
              "gan_res": gan_res, "disc_res": disc_res}
    attrs = {"kind": "correlation-state", "n_images": acc.n_images, "nulls": 0,
             "gan_layers": specs_attr(acc.gan.specs), "disc_layers": specs_attr(acc.disc.specs)}
    write_dataset(xr.Dataset(data, coords=coords, attrs=attrs), path, matrices=("cross",))


def test_a_state_packs_its_sums_and_one_with_a_sum_an_array_still_reads(tmp_path):
    """Each side's sums are two arrays (zarr's cost is per array), named by their attr
    `sums`, without coordinate arrays; a state written before, a sum an array, reads the
    same, whole and in a row block of G units of one map size."""
    acc, _ = shard(0)
    save_accumulator(acc, tmp_path / "new.zarr", gan="G", disc="D")
    _old_layout(acc, tmp_path / "old.zarr")
    ds = xr.open_zarr(tmp_path / "new.zarr", consolidated=False)
    assert sorted(ds.variables) == ["cross", "disc_partner_sums", "disc_sums",
                                    "gan_partner_sums", "gan_sums"]
    assert ds["gan_sums"].dims == ("gan_unit", "stat")
    assert ds["gan_sums"].attrs["sums"] == ["shift", "native_sum", "native_sumsq"]
    assert ds["disc_partner_sums"].dims == ("disc_unit", "gan_res", "moment")
    assert ds["disc_partner_sums"].shape == (7, 2, 2)  # G's maps are 4 and 16 wide
    assert ds["disc_partner_sums"].attrs["sums"] == ["sum", "sumsq"]
    expected = acc.state_dict()["tensors"]
    for name in ("new", "old"):
        loaded = load_accumulator(tmp_path / f"{name}.zarr").state_dict()["tensors"]
        assert loaded.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
        block = load_accumulator(tmp_path / f"{name}.zarr", rows=(0, 3))  # b0, 4 wide, alone
        assert [s.name for s in block.gan.specs] == ["b0"] and block.gan.n_units == 3
        got = block.state_dict()["tensors"]
        torch.testing.assert_close(got["cross"], expected["cross"][:3], rtol=0, atol=0)
        torch.testing.assert_close(got["gan_sum"], expected["gan_sum"][:3], rtol=0, atol=0)
        torch.testing.assert_close(got["disc_sum"], expected["disc_sum"][:, :1], rtol=0, atol=0)
