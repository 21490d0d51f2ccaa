"""Row blocks and fused passes: the shard and match stores are the same bytes whichever way
the work is cut (one pass for all pairs, a job per pair, row blocks of a small budget)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rosetta_steps import sample
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.stores import open_store
from rosetta_steps.core.units import LayerSpec
from rosetta_steps.mining.blocks import block_maps, block_specs, plan_passes, row_blocks
from rosetta_steps.mining.matching import MINED_WITH, Pair, mine_shard
from rosetta_steps.mining.reduction import reduce_pair

SPECS = [LayerSpec("a", 3, 4), LayerSpec("b", 5, 2)]
RANDOM = {"shapes-gan": "random", "shapes-cnn-sup": "random", "shapes-vit-mae": "random"}


def store_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a store, the root metadata read as JSON without the attr that records
    what its job wrote together (`matching.MINED_WITH`)."""
    out = {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
           if p.is_file()}
    root = json.loads(out.pop("zarr.json"))
    root["attributes"].pop(MINED_WITH, None)  # a sample step's store has none
    return {**out, "zarr.json": root}


def test_block_specs_and_maps_by_hand():
    assert block_specs(SPECS, 0, 8) == [(SPECS[0], 0, 3), (SPECS[1], 0, 5)]
    assert block_specs(SPECS, 2, 5) == [(LayerSpec("a", 1, 4), 2, 3), (LayerSpec("b", 2, 2), 0, 2)]
    assert block_specs(SPECS, 3, 8) == [(SPECS[1], 0, 5)]
    maps = {"a": torch.randn(2, 3, 4, 4), "b": torch.randn(2, 5, 2, 2)}
    cut = block_maps(maps, SPECS, 2, 5)
    assert list(cut) == ["a", "b"]
    assert torch.equal(cut["a"], maps["a"][:, 2:3]) and torch.equal(cut["b"], maps["b"][:, :2])


def test_row_blocks_and_passes_by_hand():
    mb, ten = 2**20, [LayerSpec("a", 4, 8), LayerSpec("b", 6, 4)]
    # 1.5 copies x 1000 columns x (8 bytes + 2 nulls x 4 bytes) = 24000 bytes a row
    assert row_blocks(ten, 1000, 2, 1.0) == [(0, 10)]
    assert row_blocks(ten, 1000, 2, 24000 * 7 / mb) == [(0, 4), (4, 10)]  # whole layers
    assert row_blocks(ten, 1000, 2, 24000 * 3 / mb) == [(0, 3), (3, 4), (4, 7), (7, 10)]
    big = [LayerSpec("c", 2048, 4)]
    assert row_blocks(big, 1000, 2, 24000 * 1300 / mb) == [(0, 1024), (1024, 2048)]  # 512s
    with pytest.raises(UserError, match="holds no row"):
        row_blocks(ten, 1000, 2, 23000 / mb)
    # pairs of 24000 and 12000 bytes a row: 360000 bytes in all
    assert plan_passes(ten, [1000, 500], 2, 1.0) == [[(0, 0, 10), (1, 0, 10)]]
    assert plan_passes(ten, [1000, 500], 2, 300000 / mb) == [[(0, 0, 10)], [(1, 0, 10)]]
    assert plan_passes(ten, [1000, 500], 2, 200000 / mb) == [
        [(0, 0, 4)], [(0, 4, 10)], [(1, 0, 10)]]
    # pair 0's second block (144000 bytes) leaves room for all of a pair of 2400 a row
    assert plan_passes(ten, [1000, 100], 2, 200000 / mb) == [
        [(0, 0, 4)], [(0, 4, 10), (1, 0, 10)]]


def test_fused_blocked_and_per_pair_stores_are_identical(tmp_path):
    """One pass for all pairs, a job per pair, and row blocks cut at layers and whole tiles
    give the same bytes; blocks of a few rows (at 0.6 MB, G against itself and against MAE's
    1536 columns are cut inside G's layers) round differently, within float64 (float32 for
    the nulls) rounding."""
    args = dict(weights=RANDOM, seed=3, start=2, count=6, batch_size=3, nulls=2)
    discs = ["shapes-cnn-sup", "shapes-gan", "shapes-vit-mae"]
    fused = [Pair(d, tmp_path / "fused" / f"{d}.zarr") for d in discs]
    assert mine_shard("shapes-gan", fused, samples=tmp_path / "fused" / "samples.zarr",
                      **args).passes == 1
    blocked = [Pair(d, tmp_path / "blocked" / f"{d}.zarr") for d in discs]
    assert mine_shard("shapes-gan", blocked, state_mb=0.6, **args).passes > len(discs)
    for d in discs:
        alone = tmp_path / "alone" / f"{d}.zarr"
        assert mine_shard("shapes-gan", [Pair(d, alone)], **args).passes == 1
        assert store_bytes(alone) == store_bytes(tmp_path / "fused" / f"{d}.zarr"), d
        if d == "shapes-cnn-sup":
            assert store_bytes(alone) == store_bytes(tmp_path / "blocked" / f"{d}.zarr"), d
        matches = {}
        for way in ("alone", "fused"):  # the match stores are the same bytes, every file
            out = tmp_path / "matches" / way / f"{d}.zarr"
            reduce_pair([tmp_path / way / f"{d}.zarr"], out,
                        [out.with_suffix(f".null{r}.zarr") for r in (1, 2)])
            matches[way] = {str(p.relative_to(out.parent)): p.read_bytes()
                            for p in sorted(out.parent.rglob("*")) if p.is_file()}
        assert matches["alone"] == matches["fused"], d
    for d in ("shapes-gan", "shapes-vit-mae"):
        dense, cut = (open_store(tmp_path / k / f"{d}.zarr", "correlation-state")
                      for k in ("alone", "blocked"))
        assert ({**dense.attrs, "files": 0, MINED_WITH: 0}
                == {**cut.attrs, "files": 0, MINED_WITH: 0})
        for name, var in dense.data_vars.items():
            scale = np.abs(var.values).max()
            tol = 1e-6 if name.startswith("null_") else 1e-12
            np.testing.assert_allclose(cut[name].values, var.values, rtol=0, atol=tol * scale)
    assert run(sample.main, ["--gan", "shapes-gan", "--weights", "shapes-gan=random",
                             "--seed", "3", "--start", "2", "--count", "6", "--batch-size", "3",
                             "--out", str(tmp_path / "samples.zarr")]) == 0
    assert store_bytes(tmp_path / "samples.zarr") == store_bytes(
        tmp_path / "fused" / "samples.zarr")


def test_blocked_reduce_equals_dense(tmp_path):
    args = dict(weights=RANDOM, seed=0, count=4, batch_size=2, nulls=1)
    shards = [tmp_path / f"s{start}.zarr" for start in (0, 4)]
    for start, path in zip((0, 4), shards, strict=True):
        mine_shard("shapes-gan", [Pair("shapes-gan", path)], start=start, **args)
    outs = {}
    for name, budget in (("dense", float("inf")), ("blocked", 0.25)):  # blocks of 11 rows
        outs[name] = [tmp_path / name / "m.zarr", tmp_path / name / "null.zarr"]
        gan, disc, rows, cols, images = reduce_pair(shards, outs[name][0], outs[name][1:],
                                                    images=8, state_mb=budget)
        assert (gan, disc, rows, cols, images) == ("shapes-gan", "shapes-gan", 496, 496, 8)
    for dense, blocked in zip(outs["dense"], outs["blocked"], strict=True):
        assert store_bytes(dense) == store_bytes(blocked)
