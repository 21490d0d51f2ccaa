"""A job's memory budget (`mining.budget`): the scratch it counts is what the accumulators
hold, the writers' rows and the refusals are as defined, and a job whose budget holds less
than its models and a batch says which batch size fits."""

import pytest
import torch

from rosetta_steps import match
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.units import LayerSpec
from rosetta_steps.mining.blocks import block_maps, block_specs
from rosetta_steps.mining.budget import MB, held_bytes, scratch_bytes, state_share
from rosetta_steps.mining.buffers import Buffers
from rosetta_steps.mining.correlation import CorrelationAccumulator

GAN = [LayerSpec("g4", 6, 4), LayerSpec("g8", 5, 8), LayerSpec("g16", 3, 16),
       LayerSpec("g8b", 4, 8)]
DISC = [LayerSpec("d12", 7, 12), LayerSpec("d6", 9, 6), LayerSpec("d3", 2, 3)]


def maps(specs, batch):
    return {s.name: torch.randn(batch, s.channels, s.size, s.size) for s in specs}


def held(buffers: Buffers) -> int:
    return sum(t.numel() * t.element_size() for t in buffers.storage.values())


@pytest.mark.parametrize(("dtype", "nulls"), [(torch.float64, 0), (torch.float64, 2),
                                              (torch.float32, 1)])
def test_scratch_is_what_the_accumulator_holds(dtype, nulls):
    batch = 3
    for disc in (DISC, GAN):  # against D (mismatched sizes both ways), and G against itself
        acc = CorrelationAccumulator("cpu", dtype=dtype, nulls=nulls)
        for _ in range(2):
            acc.update(maps(GAN, batch), maps(disc, batch))
        assert held(acc._scratch) == scratch_bytes([(GAN, disc)], batch, nulls,
                                                   dtype.itemsize)


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


def test_state_share_names_the_batch_that_fits():
    def overhead(batch):  # 100 MB, and 30 MB an image
        return (100 + 30 * batch) * MB

    assert state_share(500, overhead, 8) == pytest.approx(500 - 340)
    with pytest.raises(UserError, match=r"batch of 16 image\(s\) take about 580 MB; lower "
                                        r"batch_size to 13 or raise mem_mb"):
        state_share(500, overhead, 16)  # 100 + 30 * 13 = 490 < 500 <= 520
    with pytest.raises(UserError, match=r"take about 130 MB; raise mem_mb$"):
        state_share(120, overhead, 1)


def test_match_refuses_a_budget_below_its_models_in_one_line(tmp_path, capsys):
    argv = ["--gan", "shapes-gan", "--weights", "shapes-gan=random", "--count", "2",
            "--batch-size", "2", "--out", str(tmp_path / "g.zarr"), "--device", "cpu",
            "--mem-mb", "300"]
    assert run(match.main, argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mem_mb 300 leaves nothing for the correlation states" in err[0]
    assert not (tmp_path / "g.zarr").exists()
