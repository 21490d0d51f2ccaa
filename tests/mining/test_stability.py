"""Stability in n from shards equals best buddies recomputed from scratch on those images."""

import json

import numpy as np
import pytest
import torch
from reference import reference_best_buddies

from rosetta_steps import stability
from rosetta_steps.core.cli import run
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.stability import jaccard
from rosetta_steps.mining.state import save_accumulator

K = 3


def data(n_shards=8, per_shard=8, units=30, seed=0):
    """G and D maps with a shared signal in units 0..9 that the images bring out slowly."""
    gen = torch.Generator().manual_seed(seed)
    n = n_shards * per_shard
    d = torch.randn(n, units, 5, 5, generator=gen, dtype=torch.float64)
    g = torch.randn(n, units, 5, 5, generator=gen, dtype=torch.float64)
    g[:, :10] = 0.6 * d[:, :10] + g[:, :10]
    return g, d


def scratch(g, d, rows):
    """Best buddies of the images `rows`, accumulated from scratch, by the reference."""
    acc = CorrelationAccumulator(device="cpu")
    acc.update({"g": g[rows]}, {"d": d[rows]})
    return set(reference_best_buddies(acc.correlation().numpy(), K))


@pytest.fixture
def shards(tmp_path):
    g, d = data()
    paths = []
    for i in range(8):
        acc = CorrelationAccumulator(device="cpu", nulls=1)
        for b in range(i * 8, i * 8 + 8, 4):
            acc.update({"g": g[b:b + 4]}, {"d": d[b:b + 4]})
        paths.append(tmp_path / f"s{i}.zarr")
        save_accumulator(acc, paths[-1], gan="G", disc="D", start=str(i * 8), count="8")
    return paths, g, d


def test_fractions_and_halves_equal_best_buddies_from_scratch(shards, tmp_path):
    paths, g, d = shards
    out = tmp_path / "st.json"
    assert run(stability.main, [*map(str, paths[::-1]), "--k", str(K), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    full = scratch(g, d, slice(0, 64))
    rows = table["fractions"]
    assert [r["images"] for r in rows] == [8, 16, 32, 64]  # shards sorted by their start
    for r in rows:
        prefix = scratch(g, d, slice(0, r["images"]))
        assert r["best_buddies"] == len(prefix)
        assert r["jaccard"] == pytest.approx(len(prefix & full) / len(prefix | full))
    assert rows[-1]["jaccard"] == 1.0
    even = np.concatenate([np.arange(i * 8, i * 8 + 8) for i in range(0, 8, 2)])
    halves = [scratch(g, d, even), scratch(g, d, even + 8)]
    assert table["split_half"]["images"] == [32, 32]
    assert table["split_half"]["best_buddies"] == [len(h) for h in halves]
    assert table["split_half"]["jaccard"] == pytest.approx(jaccard(*halves))


def test_fractions_round_down_to_whole_shards(shards, tmp_path, capsys):
    paths, _, _ = shards
    out = tmp_path / "st.json"
    assert run(stability.main, [*map(str, paths[:6]), "--k", str(K), "--out", str(out)]) == 0
    # 6 shards: 1/8 and 1/4 of them are 1 shard (counted once), 1/2 is 3, all 6
    assert [r["shards"] for r in json.loads(out.read_text())["fractions"]] == [1, 3, 6]
    assert run(stability.main, [*map(str, paths[:2]), "--k", str(K), "--out", str(out)]) == 0
    assert [r["images"] for r in json.loads(out.read_text())["fractions"]] == [8, 16]
    assert run(stability.main, [str(paths[0]), "--out", str(out)]) == 2
    assert "at least 2 shards" in capsys.readouterr().err


def test_jaccard_by_hand():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5 and jaccard(set(), set()) == 1.0
