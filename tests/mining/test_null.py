"""The null model: rolled pairings through the exact accumulator, and target-decoy q values."""

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from reference import random_acts, reference_best_buddies, reference_correlation

from rosetta_steps import bestbuddies, reduce, rosetta
from rosetta_steps.core.cli import run
from rosetta_steps.core.stores import open_store
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.null import null_shift, q_values
from rosetta_steps.mining.reduction import write_match_store
from rosetta_steps.mining.state import load_accumulator, save_accumulator

GAN = {"g4": (3, 4), "g7": (2, 7), "g16": (3, 16)}
DISC = {"d14": (4, 14), "d5": (3, 5)}
EXACT = dict(rtol=0, atol=1e-12)
NULL = dict(rtol=0, atol=1e-6)  # the null's cross products are float32 GEMMs and sums


def data(seed, sizes):
    gen = torch.Generator().manual_seed(seed)
    return [(random_acts(gen, n, GAN), random_acts(gen, n, DISC)) for n in sizes]


def accumulate(batches, nulls=2, chunk=None):
    acc = CorrelationAccumulator(device="cpu", nulls=nulls, chunk=chunk)
    for g, d in batches:
        acc.update(g, d)
    return acc


def mispaired(batches, r):
    """Every image of G against the D image null permutation r gives it, the slow way."""
    gan = {k: torch.cat([g[k] for g, _ in batches]) for k in GAN}
    disc = {k: torch.cat([d[k].roll(null_shift(r, len(d[k])), dims=0) for _, d in batches])
            for k in DISC}
    return reference_correlation(gan, disc)


def test_null_shift_is_a_derangement_of_every_batch():
    assert [null_shift(r, 4) for r in (1, 2, 3, 4)] == [1, 2, 3, 1]
    assert [null_shift(r, 2) for r in (1, 2)] == [1, 1]
    for batch in range(2, 7):
        for r in range(1, 6):
            perm = torch.arange(batch).roll(null_shift(r, batch))
            assert (perm != torch.arange(batch)).all()
    with pytest.raises(ValueError, match="2 images or more"):
        null_shift(1, 1)


@pytest.mark.parametrize("chunk", [None, 2])  # D's side whole or two units at a time
def test_rolled_null_equals_brute_force_mispaired_pearson(chunk):
    batches = data(0, [4, 3, 2])  # uneven batches: each is rolled within itself
    acc = accumulate(batches, chunk=chunk)
    for r in (1, 2):
        np.testing.assert_allclose(acc.correlation(null=r).numpy(), mispaired(batches, r),
                                   **NULL)
    observed = reference_correlation(
        *({k: torch.cat([b[i][k] for b in batches]) for k in side}
          for i, side in enumerate((GAN, DISC))))
    np.testing.assert_allclose(acc.correlation().numpy(), observed, **EXACT)
    assert not np.allclose(acc.correlation(null=1).numpy(), observed)


def test_float32_null_sums_of_many_batches_and_large_means_stay_within_1e_6(tmp_path):
    """The nulls' cross products are summed in float32 (half a float64 state's memory): 80
    batches of units whose means are 1000 times their spreads still give the brute-force
    mispaired Pearson within 1e-6, through a state store (float32 there too)."""
    batches = [({k: 1000 + v for k, v in g.items()}, d) for g, d in data(4, [2] * 80)]
    acc = accumulate(batches)
    assert acc.cross.dtype == torch.float64
    assert [c.dtype for c in acc.null_cross] == [torch.float32] * 2
    save_accumulator(acc, tmp_path / "s.zarr", gan="G", disc="D")
    ds = open_store(tmp_path / "s.zarr", "correlation-state")
    assert [ds[n].dtype for n in ("cross", "null_cross_1", "null_cross_2")] == [
        np.float64, np.float32, np.float32]
    restored = load_accumulator(tmp_path / "s.zarr")
    for r in (1, 2):
        np.testing.assert_allclose(restored.correlation(null=r).numpy(), mispaired(batches, r),
                                   **NULL)


def test_a_state_with_float64_nulls_still_loads():
    """A state written before the nulls' sums were float32 holds them in float64."""
    acc = accumulate(data(2, [3, 4]))
    state = acc.state_dict()
    state["tensors"] = {k: v.double() for k, v in state["tensors"].items()}
    old = CorrelationAccumulator(device="cpu", nulls=2)
    old.load_state_dict(state, copy=False)
    assert [c.dtype for c in old.null_cross] == [torch.float32] * 2
    for r in (0, 1, 2):
        np.testing.assert_array_equal(old.correlation(null=r).numpy(),
                                      acc.correlation(null=r).numpy())


def test_nulls_merge_exactly_and_survive_a_state_round_trip():
    batches = data(1, [3, 3, 4, 2])
    whole = accumulate(batches)
    merged = accumulate(batches[2:]).merge(accumulate(batches[:2]))
    restored = CorrelationAccumulator(device="cpu", nulls=2)
    restored.load_state_dict(merged.state_dict())
    for r in (0, 1, 2):
        np.testing.assert_allclose(restored.correlation(null=r).numpy(),
                                   whole.correlation(null=r).numpy(), **(NULL if r else EXACT))
    with pytest.raises(ValueError, match="null permutations differ"):
        merged.merge(accumulate(batches[:1], nulls=1))


@pytest.mark.parametrize("disc", [DISC, dict(reversed(DISC.items()))],
                         ids=["d-out-of-size-order", "d-in-size-order"])
def test_a_consuming_merge_is_the_copying_one_and_adopts_the_matrices(disc):
    gen = torch.Generator().manual_seed(2)
    batches = [(random_acts(gen, n, GAN), random_acts(gen, n, disc)) for n in (3, 2, 4)]
    shard = accumulate(batches[1:])
    copied = accumulate(batches[:1]).merge(shard)  # copies: `shard` stays as it was
    consumed = accumulate(batches[:1]).merge(accumulate(batches[1:]), consume=True)
    for r in (0, 1, 2):
        assert torch.equal(consumed.correlation(null=r), copied.correlation(null=r))
    # into an empty accumulator, a consumed shard's matrices become its own where its group
    # order is the given one (every layer listed by size), else they are copied
    first = accumulate(batches[:1])
    pointers = [m.data_ptr() for m in (first.cross, *first.null_cross)]
    empty = CorrelationAccumulator(device="cpu", nulls=2).merge(first, consume=True)
    adopted = [m.data_ptr() for m in (empty.cross, *empty.null_cross)] == pointers
    assert adopted == (list(disc) != list(DISC))
    assert torch.equal(empty.merge(shard).correlation(null=2), copied.correlation(null=2))


def test_q_values_by_hand():
    # observed .9 .8 .5 .3 (sorted); null pairs >= each: 0, .5, 1, 1 on average;
    # observed pairs >= each: 1, 2, 3, 4 -> .0 .25 .33 .25 -> monotone .0 .25 .25 .25
    q = q_values(np.array([0.9, 0.5, 0.8, 0.3]), [np.array([0.6, 0.2]), np.array([0.85, 0.1])])
    np.testing.assert_allclose(q, [0.0, 0.25, 0.25, 0.25])
    # ties count together; a null beyond every observation caps q at 1
    np.testing.assert_allclose(q_values(np.array([0.5, 0.5]), [np.array([0.7, 0.6, 0.5])]),
                               [1.0, 1.0])


def buddy_q(g, d, nulls=4, batch=8):
    """Best buddies (K=3, by the brute-force reference) of G and D maps and their q values."""
    acc = CorrelationAccumulator(device="cpu", nulls=nulls)
    for i in range(0, len(g), batch):
        acc.update({"g": g[i:i + batch]}, {"d": d[i:i + batch]})

    def correlations(corr):
        pairs = reference_best_buddies(corr, k=3)
        return pairs, np.array([corr[j, k] for j, k in pairs])

    pairs, observed = correlations(acc.correlation().numpy())
    return pairs, q_values(observed, [correlations(acc.correlation(null=r).numpy())[1]
                                      for r in range(1, nulls + 1)])


def noise(seed, n=64, units=40):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, units, 6, 6, generator=gen, dtype=torch.float64) for _ in range(2))


def test_planted_pairs_get_small_q():
    """G units 0..5 copy D units 0..5 plus noise on the same images; the rest are noise."""
    g, d = noise(3)
    g[:, :6] = d[:, :6] + 0.5 * g[:, :6]
    pairs, q = buddy_q(g, d)
    planted = np.array([j == k and j < 6 for j, k in pairs])
    assert planted.sum() == 6
    assert (q[planted] <= 0.05).all()
    assert (q[~planted] <= 0.05).sum() <= 1  # a false discovery rate near 5%, not zero
    assert np.median(q[~planted]) > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_noise_gets_q_near_one(seed):
    _, q = buddy_q(*noise(seed))
    assert len(q) > 50 and (q > 0.05).all() and np.median(q) > 0.75


def planted_shards(folder, nulls=2):
    """Two shards of planted G and D maps (G units 0..5 copy D units 0..5 plus noise), the
    one-pass accumulator of both, and G's maps."""
    g, d = noise(5)
    g[:, :6] = d[:, :6] + 0.5 * g[:, :6]
    paths, whole = [], CorrelationAccumulator(device="cpu", nulls=nulls)
    for start in (0, 32):
        acc = CorrelationAccumulator(device="cpu", nulls=nulls)
        for i in range(start, start + 32, 8):
            for a in (acc, whole):
                a.update({"g": g[i:i + 8]}, {"d": d[i:i + 8]})
        paths.append(folder / f"{start}.zarr")
        save_accumulator(acc, paths[-1], gan="G", disc="D", start=str(start), count="32")
    return paths, whole, g


def test_null_stores_flow_from_shards_to_q_values_and_the_fdr_cut(tmp_path, capsys):
    shards, whole, g = planted_shards(tmp_path)
    out, nulls = tmp_path / "m.zarr", [tmp_path / "null-1.zarr", tmp_path / "null-2.zarr"]
    assert run(reduce.main, [*map(str, shards), "--images", "64", "--out", str(out),
                             "--null-out", *map(str, nulls)]) == 0
    for r, path in enumerate(nulls, start=1):
        ds = xr.open_zarr(path, consolidated=False)
        assert ds.attrs["null"] == r and ds.attrs["kind"] == "matches"
        np.testing.assert_allclose(ds["corr"].values, whole.correlation(null=r).numpy(),
                                   atol=1e-6)

    table, null_table = tmp_path / "bb.csv", tmp_path / "bb-null.csv"
    assert run(bestbuddies.main, [str(out), "--k", "3", "--null", *map(str, nulls),
                                  "--out", str(table), "--null-out", str(null_table)]) == 0
    bb, null_bb = pd.read_csv(table), pd.read_csv(null_table)
    observed = bb["corr"].to_numpy()
    expected = q_values(observed, [null_bb.loc[null_bb["null"] == r, "corr"].to_numpy()
                                   for r in (1, 2)])
    np.testing.assert_allclose(bb["q"], expected)
    planted = bb["gan_channel"].eq(bb["disc_channel"]) & bb["gan_channel"].lt(6)
    assert planted.sum() == 6 and (bb.loc[planted, "q"] <= 0.05).all()
    assert set(null_bb["null"]) == {1, 2}

    # the Rosetta merge cut at q <= 0.05 keeps the planted G units only
    self_acc = CorrelationAccumulator(device="cpu")
    self_acc.update({"g": g}, {"g": g})
    write_match_store(self_acc, tmp_path / "self.zarr", gan="G", disc="G")
    units = {}
    for fdr in ([], ["--fdr", "0.05"]):
        concepts = tmp_path / f"c{len(fdr)}.csv"
        assert run(rosetta.main, ["--bestbuddies", str(table), "--self-matches",
                                  str(tmp_path / "self.zarr"), "--k", "3", *fdr,
                                  "--out", str(concepts)]) == 0
        c = pd.read_csv(concepts)
        units[len(fdr)] = set(c.loc[c["role"] == "gan", "channel"])
    assert units[2] == set(range(6)) and len(units[0]) > 6
    capsys.readouterr()
    plain = tmp_path / "plain.csv"
    bb.drop(columns="q").to_csv(plain, index=False)
    assert run(rosetta.main, ["--bestbuddies", str(plain), "--self-matches",
                              str(tmp_path / "self.zarr"), "--fdr", "0.05",
                              "--out", str(tmp_path / "c.csv")]) == 2
    assert "has no q column" in capsys.readouterr().err


def test_null_stores_are_checked_against_their_pair(tmp_path, capsys):
    shards, _, _ = planted_shards(tmp_path, nulls=1)
    out = tmp_path / "m.zarr"
    assert run(reduce.main, [*map(str, shards), "--out", str(out)]) == 2
    assert "hold 1 null permutations, and 0 null match stores are asked for" in \
        capsys.readouterr().err
    assert not out.exists()
    assert run(reduce.main, [*map(str, shards), "--out", str(out), "--null-out",
                             str(tmp_path / "n.zarr")]) == 0
    capsys.readouterr()
    assert run(bestbuddies.main, [str(out), "--k", "3", "--null", str(out),
                                  "--out", str(tmp_path / "bb.csv")]) == 2
    assert "is not a null match store of" in capsys.readouterr().err
    assert not (tmp_path / "bb.csv").exists()


@pytest.mark.parametrize("fails", ["bb.csv", "bb-null.csv"])
def test_best_buddies_and_their_null_table_are_written_together_or_not_at_all(
        tmp_path, capsys, monkeypatch, fails):
    shards, _, _ = planted_shards(tmp_path)
    out, nulls = tmp_path / "m.zarr", [tmp_path / "null-1.zarr", tmp_path / "null-2.zarr"]
    assert run(reduce.main, [*map(str, shards), "--images", "64", "--out", str(out),
                             "--null-out", *map(str, nulls)]) == 0
    real = pd.DataFrame.to_csv

    def full_disk(frame, path, *args, **kwargs):  # the disk fills while one table is written
        if Path(path).name.startswith(f".{fails}.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    capsys.readouterr()
    assert run(bestbuddies.main, [str(out), "--k", "3", "--null", *map(str, nulls), "--out",
                                  str(tmp_path / "bb.csv"), "--null-out",
                                  str(tmp_path / "bb-null.csv")]) == 2
    assert f"no space left on the device writing {tmp_path / fails}" in capsys.readouterr().err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".bb", "bb"))]
