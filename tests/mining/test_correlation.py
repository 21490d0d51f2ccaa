"""CorrelationAccumulator equals the brute-force Eq. 2 (upsample, then global Pearson)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference import random_acts, reference_correlation

from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.resize import upsample_matrix

# Mismatched sizes, including ratios that are not integers (7 -> 16, 5 -> 8, 3 -> 14).
GAN = {"g4": (3, 4), "g8": (4, 8), "g16a": (2, 16), "g7": (3, 7), "g16b": (3, 16)}
DISC = {"d14": (4, 14), "d5": (3, 5), "d3": (2, 3), "d8": (3, 8)}
EXACT = dict(rtol=0, atol=1e-12)


def batches(seed, n_batches, batch=4, gan=GAN, disc=DISC, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [(random_acts(gen, batch, gan, dtype), random_acts(gen, batch, disc, dtype))
            for _ in range(n_batches)]


def concat(parts):
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def accumulate(data, **kw):
    acc = CorrelationAccumulator(device="cpu", **kw)
    for g, d in data:
        acc.update(g, d)
    return acc


def test_upsample_matrix_is_torch_bilinear():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    for size in (5, 8, 10, 13, 40):
        u = upsample_matrix(5, size)
        expected = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        torch.testing.assert_close(u @ x @ u.T, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("chunk", [None, 2, 3])  # D's side whole, or cut inside its layers
def test_streaming_equals_brute_force_with_mismatched_sizes(chunk):
    data = batches(0, 3)
    corr = accumulate(data, chunk=chunk).correlation()
    assert corr.shape == (sum(c for c, _ in GAN.values()), sum(c for c, _ in DISC.values()))
    expected = reference_correlation(concat([g for g, _ in data]), concat([d for _, d in data]))
    np.testing.assert_allclose(corr.numpy(), expected, **EXACT)


def test_batch_sizes_and_memory_layouts_may_vary():
    """Buffers are reused between batches: a smaller last batch, channels-last maps and a
    float32 batch (still attached to autograd) among float64 ones all give Eq. 2 exactly."""
    data = batches(10, 2) + batches(11, 1, batch=2)
    data[1] = ({k: v.to(memory_format=torch.channels_last) for k, v in data[1][0].items()},
               data[1][1])
    data[2] = (data[2][0], {k: v.float().requires_grad_() for k, v in data[2][1].items()})
    with torch.no_grad():
        expected = reference_correlation(concat([g for g, _ in data]),
                                         concat([d for _, d in data]))
    np.testing.assert_allclose(accumulate(data).correlation().numpy(), expected, **EXACT)


def test_unit_order_is_layer_order_then_channel():
    (g, d), = batches(1, 1)
    corr = accumulate([(g, d)]).correlation()
    # unit 3 of G is channel 0 of the second layer; unit 4 of D is channel 0 of "d5".
    alone = accumulate([({"g8": g["g8"]}, {"d5": d["d5"]})]).correlation()
    np.testing.assert_allclose(corr[3:7, 4:7].numpy(), alone.numpy(), **EXACT)


def test_merged_shards_equal_one_pass():
    data = batches(2, 5, batch=3)
    whole = accumulate(data).correlation()
    shards = [accumulate(data[:1]), accumulate(data[1:3]), accumulate(data[3:])]
    merged = CorrelationAccumulator(device="cpu")
    for shard in shards[::-1]:
        merged.merge(shard)
    assert merged.n_images == 15
    np.testing.assert_allclose(merged.correlation().numpy(), whole.numpy(), **EXACT)
    for side in ("gan", "disc"):
        for a, b in zip(merged.native_stats(side), accumulate(data).native_stats(side),
                        strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_large_offset_small_spread():
    data = batches(3, 3)
    shifted = [({k: 1e6 + 1e-3 * v for k, v in g.items()},
                {k: -5e5 + 1e-2 * v for k, v in d.items()}) for g, d in data]
    expected = reference_correlation(concat([g for g, _ in data]), concat([d for _, d in data]))
    np.testing.assert_allclose(accumulate(shifted).correlation().numpy(), expected,
                               rtol=0, atol=1e-6)
    merged = accumulate(shifted[:1]).merge(accumulate(shifted[1:]))
    np.testing.assert_allclose(merged.correlation().numpy(), expected, rtol=0, atol=1e-6)


def test_dead_units_correlate_zero_not_nan():
    data = batches(4, 2)
    for g, d in data:
        g["g8"][:, 1] = 0.0
        g["g4"][:, 0] = 7.25
        d["d14"][:, 2] = -3.0
    corr = accumulate(data).correlation()
    assert torch.isfinite(corr).all()
    assert (corr[4] == 0).all() and (corr[0] == 0).all() and (corr[:, 2] == 0).all()
    expected = reference_correlation(concat([g for g, _ in data]), concat([d for _, d in data]))
    np.testing.assert_allclose(corr.numpy(), expected, **EXACT)


def test_planted_pairs_are_found():
    gen = torch.Generator().manual_seed(5)
    field = torch.rand(32, 1, 16, 16, generator=gen, dtype=torch.float64)
    g = random_acts(gen, 32, {"a": (6, 8), "b": (5, 16)})
    d = random_acts(gen, 32, {"c": (7, 4), "e": (4, 14)})
    g["a"][:, 2] = F.interpolate(field, size=(8, 8), mode="bilinear")[:, 0]
    g["b"][:, 4] = field[:, 0] * 3 + 10
    d["e"][:, 1] = F.interpolate(field, size=(14, 14), mode="bilinear")[:, 0] ** 2
    corr = accumulate([(g, d)]).correlation()
    np.testing.assert_allclose(corr.numpy(), reference_correlation(g, d), **EXACT)
    assert corr[10].argmax() == 8 and corr[10, 8] > 0.7
    assert corr[:, 8].argmax() in (2, 10)


def test_native_stats_are_eq1():
    data = batches(6, 2)
    acc = accumulate(data)
    mean, std = acc.native_stats("disc")
    d = concat([d for _, d in data])
    t = d["d14"].transpose(0, 1).reshape(4, -1)
    np.testing.assert_allclose(mean[:4].numpy(), t.mean(1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(std[:4].numpy(), t.std(1).numpy(), rtol=1e-12)


def test_float32_inputs_and_gemms():
    data = batches(7, 2, dtype=torch.float32)
    expected = reference_correlation(concat([g for g, _ in data]), concat([d for _, d in data]))
    np.testing.assert_allclose(accumulate(data).correlation().numpy(), expected, **EXACT)
    fast = accumulate(data, dtype=torch.float32).correlation().numpy()
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-5)


def test_layout_must_not_change():
    (g, d), = batches(8, 1)
    acc = accumulate([(g, d)])
    with pytest.raises(ValueError, match="layer layout differs"):
        acc.update({"g4": g["g4"]}, d)
    with pytest.raises(ValueError, match="batch sizes differ"):
        acc.update(g, {k: v[:2] for k, v in d.items()})
    with pytest.raises(ValueError, match="h == w"):
        acc.update({"x": torch.zeros(2, 3, 4, 5)}, d)


def test_chunks_of_d_change_only_the_last_bits():
    """D's side taken a few units at a time: the same sums (up to rounding), so the same
    correlations, for G against D and G against itself; the GEMMs' edge columns round
    differently, so not bit for bit."""
    data = batches(5, 2, batch=3)
    for disc in ("disc", "gan"):
        pairs = [(g, g if disc == "gan" else d) for g, d in data]
        whole = accumulate(pairs, nulls=2)
        cut = accumulate(pairs, nulls=2, chunk=2)
        for r in range(3):
            np.testing.assert_allclose(cut.correlation(r).numpy(), whole.correlation(r).numpy(),
                                       rtol=0, atol=1e-12 if r == 0 else 1e-6)
        for name in ("shift", "sum", "sumsq", "native_sum", "native_sumsq"):
            np.testing.assert_allclose(getattr(cut.disc, name).numpy(),
                                       getattr(whole.disc, name).numpy(), rtol=1e-12)
