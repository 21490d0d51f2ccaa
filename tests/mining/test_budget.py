"""A job's memory budget (`mining.budget`): the scratch it counts is what the accumulators
hold, the writers' rows and the refusals are as defined, and a job whose budget holds less
than its models and a batch says which batch size fits."""

import pytest
import torch

from rosetta_steps import match, models
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.units import LayerSpec
from rosetta_steps.mining.blocks import block_maps, block_specs
from rosetta_steps.mining.budget import (
    CHUNKS,
    MB,
    fit_passes,
    held_bytes,
    match_fixed,
    model_bytes,
    one_pass_mb,
    pass_bytes,
    scratch_bytes,
    state_share,
)
from rosetta_steps.mining.buffers import Buffers
from rosetta_steps.mining.correlation import CorrelationAccumulator

GAN = [LayerSpec("g4", 6, 4), LayerSpec("g8", 5, 8), LayerSpec("g16", 3, 16),
       LayerSpec("g8b", 4, 8)]
DISC = [LayerSpec("d12", 7, 12), LayerSpec("d6", 9, 6), LayerSpec("d3", 2, 3)]


def maps(specs, batch):
    return {s.name: torch.randn(batch, s.channels, s.size, s.size) for s in specs}


def held(buffers: Buffers) -> int:
    return sum(t.numel() * t.element_size() for t in buffers.storage.values())


@pytest.mark.parametrize(("dtype", "nulls", "chunk"), [
    (torch.float64, 0, None), (torch.float64, 2, None), (torch.float32, 1, None),
    (torch.float64, 2, 4), (torch.float32, 1, 3)])
def test_scratch_is_what_the_accumulator_holds(dtype, nulls, chunk):
    batch = 3
    for disc in (DISC, GAN):  # against D (mismatched sizes both ways), and G against itself
        acc = CorrelationAccumulator("cpu", dtype=dtype, nulls=nulls, chunk=chunk)
        for _ in range(2):
            acc.update(maps(GAN, batch), maps(disc, batch))
        assert held(acc._scratch) == scratch_bytes([(GAN, disc)], batch, nulls,
                                                   dtype.itemsize, chunk)


def test_blocks_sharing_scratch_hold_the_largest_of_each_role():
    batch, shared = 2, Buffers(torch.device("cpu"))
    cuts = [(0, 8), (8, 15), (15, 18)]  # inside g4 .. g8, g16 alone, into g8b
    g_maps, d_maps = maps(GAN, batch), maps(DISC, batch)
    blocks = [([s for s, _, _ in block_specs(GAN, lo, hi)], DISC) for lo, hi in cuts]
    for (lo, hi), _ in zip(cuts, blocks, strict=True):
        acc = CorrelationAccumulator("cpu", nulls=1, scratch=shared)
        acc.update(block_maps(g_maps, GAN, lo, hi), d_maps)
    assert held(shared) == scratch_bytes(blocks, batch, nulls=1)
    alone = sum(scratch_bytes([b], batch, nulls=1) for b in blocks)
    assert held(shared) < alone  # what sharing saves


def test_held_rows_by_hand():
    # 3000 x 100 float64: chunks of 512 rows, shard files of up to 4096 rows: the whole
    # matrix (2.3 MB); 50000 x 40000 float64: a row of chunks is 160 MB (padded to 40960
    # columns), so a shard file is one of them: 512 rows, held as 512 x 40000
    small, wide = 3000 * 100 * 8, 512 * 40000 * 8
    assert held_bytes([(3000, 100, 8)], 1) == 3 * small
    matrices = [(3000, 100, 8), (50000, 40000, 8), (50000, 40000, 8)]
    assert held_bytes(matrices, 1) == wide + 2 * wide
    assert held_bytes(matrices, 2) == 2 * wide + 2 * wide
    assert held_bytes(matrices, 3) == small + 2 * wide + 2 * wide


def test_state_share_is_what_the_overhead_leaves():
    assert state_share(500, 340 * MB) == pytest.approx(160)
    with pytest.raises(UserError, match=r"take about 580 MB; raise mem_mb$"):
        state_share(500, 580 * MB)


BIG = [LayerSpec("a", 2048, 4), LayerSpec("b", 256, 32), LayerSpec("c", 64, 128)]  # 2368 units


def test_fitted_passes_fit_with_their_own_scratch_where_the_whole_g_bound_does_not():
    partners, batch, nulls = [BIG, DISC], 4, 1
    fixed = match_fixed(BIG, [DISC], partners, 0, batch, nulls)
    whole = scratch_bytes([(BIG, p) for p in partners], batch, nulls)
    mem_mb = (fixed + 0.6 * whole) / MB  # less than the scratch of the whole of G needs
    passes, chunk = fit_passes(mem_mb, BIG, [DISC], partners, 0, batch, nulls)
    assert len(passes) > 2
    covered = sorted((i, lo, hi) for p in passes for i, lo, hi in p)
    for i in (0, 1):  # every row of both pairs, once
        rows = [(lo, hi) for j, lo, hi in covered if j == i]
        assert rows[0][0] == 0 and rows[-1][1] == 2368
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
    assert max(pass_bytes(BIG, partners, p, batch, nulls, chunk)
               for p in passes) <= mem_mb * MB - fixed


def test_chunks_of_d_fit_a_pass_where_d_s_whole_maps_do_not():
    gan, wide = BIG[:2], [LayerSpec("w", 4096, 16)]  # D: 16 MB of float64 maps an image
    batch, nulls = 2, 1
    fixed = match_fixed(gan, [wide], [wide], 0, batch, nulls)
    whole = scratch_bytes([((), wide)], batch)
    mem_mb = (fixed + 0.9 * whole) / MB  # not even D's regrouped maps fit whole
    passes, chunk = fit_passes(mem_mb, gan, [wide], [wide], 0, batch, nulls)
    assert chunk in CHUNKS and chunk < 4096
    rows = sorted((lo, hi) for p in passes for _, lo, hi in p)  # every row, once
    assert rows[0][0] == 0 and rows[-1][1] == 2304
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
    assert max(pass_bytes(gan, [wide], p, batch, nulls, chunk)
               for p in passes) <= mem_mb * MB - fixed
    # with room for everything, the whole of D at once (the GEMMs' bits unchanged)
    assert fit_passes(1e6, gan, [wide], [wide], 0, batch, nulls) == ([[(0, 0, 2304)]], None)


def test_fitted_passes_name_the_batch_that_fits():
    partners, nulls = [BIG, DISC], 1
    mem_mb = (match_fixed(BIG, [DISC], partners, 0, 3, nulls)
              + 1.2 * scratch_bytes([(BIG, BIG)], 3, nulls)) / MB
    with pytest.raises(UserError) as refused:
        fit_passes(mem_mb, BIG, [DISC], partners, 0, 16, nulls)
    fits = int(str(refused.value).split("lower batch_size to ")[1].split()[0])
    assert 3 <= fits < 16
    assert fit_passes(mem_mb, BIG, [DISC], partners, 0, fits, nulls).passes
    with pytest.raises(UserError):
        fit_passes(mem_mb, BIG, [DISC], partners, 0, fits + 1, nulls)


def test_match_refuses_a_budget_below_its_models_in_one_line(tmp_path, capsys):
    argv = ["--gan", "shapes-gan", "--weights", "shapes-gan=random", "--count", "2",
            "--batch-size", "2", "--out", str(tmp_path / "g.zarr"), "--device", "cpu",
            "--mem-mb", "300"]
    assert run(match.main, argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mem_mb 300 holds no pass of the correlation states" in err[0]
    assert not (tmp_path / "g.zarr").exists()


@pytest.mark.parametrize("nulls", [0, 2])
def test_one_pass_mb_is_the_least_budget_of_one_pass(nulls):
    partners, batch = [BIG, DISC], 3
    need = one_pass_mb(BIG, [DISC], partners, 10 * MB, batch, nulls)
    assert len(fit_passes(need + 1, BIG, [DISC], partners, 10 * MB, batch, nulls).passes) == 1
    assert len(fit_passes(0.99 * need, BIG, [DISC], partners, 10 * MB, batch,
                          nulls).passes) > 1


def test_match_says_what_one_pass_would_need(tmp_path, capsys):
    """A job of several passes names the least mem_mb of one, and that budget takes one."""
    spec, model = models.load("shapes-gan", "random", "cpu")
    layers = spec.layer_specs()
    need = one_pass_mb(layers, [], [layers], model_bytes(model), 2, 0)
    argv = ["--gan", "shapes-gan", "--weights", "shapes-gan=random", "--count", "2",
            "--batch-size", "2", "--device", "cpu"]
    assert run(match.main, [*argv, "--out", str(tmp_path / "a.zarr"),
                            "--mem-mb", f"{need - 0.2:.1f}"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert " 1 pass(es)" not in line and "would take one" in line
    said = int(line.split("mem_mb ")[1].split()[0].replace(",", ""))
    assert run(match.main, [*argv, "--out", str(tmp_path / "b.zarr"), "--mem-mb",
                            str(said)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(" in 1 pass(es) of G")
