"""Best buddies equal a brute-force mutual K-NN (Eq. 3), from tensors and from match stores."""

import numpy as np
import pandas as pd
import pytest
import torch
from reference import random_acts, reference_best_buddies

from rosetta_steps import bestbuddies
from rosetta_steps.core.cli import run
from rosetta_steps.mining.buddies import COLUMNS, best_buddies, buddy_pairs
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.reduction import write_match_store


@pytest.mark.parametrize("shape", [(40, 30), (17, 60), (25, 25)])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("rule", ["mutual", "original"])
def test_matches_brute_force(shape, k, rule):
    corr = torch.rand(*shape, generator=torch.Generator().manual_seed(k + shape[0]),
                      dtype=torch.float64) * 2 - 1
    assert best_buddies(corr, k=k, rule=rule) == reference_best_buddies(corr.numpy(), k, rule)


def test_rules_relate_as_documented():
    corr = torch.rand(50, 45, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mutual, original = set(best_buddies(corr, 5)), set(best_buddies(corr, 5, rule="original"))
    assert original <= mutual and len(original) < len(mutual)
    assert len({j for j, _ in original}) == len(original)  # one partner per G unit at most


def test_self_pairs_excluded():
    x = torch.randn(30, 200, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    corr = torch.corrcoef(x)
    pairs = best_buddies(corr, 3, exclude_diagonal=True)
    assert pairs == reference_best_buddies(corr.numpy(), 3, exclude_diagonal=True)
    assert all(j != q for j, q in pairs) and {(q, j) for j, q in pairs} == set(pairs)


def test_row_blocks_give_the_same_pairs():
    corr = torch.rand(37, 23, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    blocks = [(s, corr[s:s + 4]) for s in range(0, 37, 4)]
    j, q, value = buddy_pairs(blocks, 4)
    assert sorted(zip(j.tolist(), q.tolist(), strict=True)) == best_buddies(corr, 4)
    np.testing.assert_array_equal(value.numpy(), corr[j, q].numpy())


@pytest.mark.parametrize("k", [0, -2, 31])
def test_invalid_k(k):
    with pytest.raises(ValueError, match="K"):
        best_buddies(torch.rand(40, 30), k=k)


@pytest.fixture
def match_store(tmp_path):
    gen = torch.Generator().manual_seed(3)
    acc = CorrelationAccumulator(device="cpu")
    for _ in range(2):
        acc.update(random_acts(gen, 6, {"conv1": (5, 8), "conv2": (7, 16)}),
                   random_acts(gen, 6, {"layer1": (6, 7), "layer2": (4, 4)}))
    path = tmp_path / "m.zarr"
    write_match_store(acc, path, gan="G", disc="D")
    return path, acc.correlation().float().numpy()


def test_cli_writes_the_table(match_store, tmp_path):
    path, corr = match_store
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(path), "--k", "3", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    assert (table["gan"] == "G").all() and (table["disc"] == "D").all()
    gan_units = {("conv1", c): c for c in range(5)} | {("conv2", c): 5 + c for c in range(7)}
    disc_units = {("layer1", c): c for c in range(6)} | {("layer2", c): 6 + c for c in range(4)}
    pairs = sorted((gan_units[g], disc_units[d]) for g, d in zip(
        zip(table.gan_layer, table.gan_channel, strict=True),
        zip(table.disc_layer, table.disc_channel, strict=True), strict=True))
    assert pairs == reference_best_buddies(corr, 3)
    assert table["corr"].is_monotonic_decreasing
    np.testing.assert_allclose(
        table["corr"], [corr[gan_units[(a, b)], disc_units[(c, d)]] for a, b, c, d in zip(
            table.gan_layer, table.gan_channel, table.disc_layer, table.disc_channel,
            strict=True)], rtol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--k", "0"], "K must be at least 1"),
    (["--k", "11"], "larger than the 10 candidate units"),
])
def test_cli_rejects_bad_k(match_store, tmp_path, capsys, args, message):
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(match_store[0]), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_rejects_missing_and_foreign_stores(tmp_path, capsys):
    out = tmp_path / "bb.csv"
    assert run(bestbuddies.main, [str(tmp_path / "none.zarr"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    assert run(bestbuddies.main, [str(tmp_path / "junk.zarr"), "--out", str(out)]) == 2
    assert "not a readable Zarr store" in capsys.readouterr().err
    assert not out.exists()


def test_cli_rejects_wrong_dims(match_store, tmp_path, capsys):
    import xarray as xr

    ds = xr.open_zarr(match_store[0], consolidated=False).load()
    bad = ds.rename({"gan_unit": "units"})
    del bad.attrs["files"]  # the list of the store it was read from
    bad.to_zarr(tmp_path / "bad.zarr", zarr_format=3, consolidated=False)
    argv = [str(tmp_path / "bad.zarr"), "--out", str(tmp_path / "o.csv")]
    assert run(bestbuddies.main, argv) == 2
    assert "expected variable corr with dims" in capsys.readouterr().err
