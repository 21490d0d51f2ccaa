"""Rosetta-guided inversion (Eq. 5-7) and the map edits of Sec. 4.2."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rosetta_steps import models
from rosetta_steps.core.cli import UserError
from rosetta_steps.core.stores import open_match_store
from rosetta_steps.inversion import editing
from rosetta_steps.inversion.guidance import rosetta_pairs
from rosetta_steps.inversion.objective import (
    InversionSettings,
    Pair,
    activation_similarity,
    invert,
    learning_rate,
    objective,
    reconstruction,
    regulariser,
)
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.reduction import write_match_store


def reference_similarity(gan: dict, target: dict, pairs: list[Pair]) -> list[float]:
    """Eq. 6 per image, the slow way: resize, normalise with the mining statistics, average
    the product over pixels, then over pairs (float64, explicit loops)."""
    batch = next(iter(gan.values())).shape[0]
    out = []
    for i in range(batch):
        total = 0.0
        for p in pairs:
            g = gan[p.gan_layer][i:i + 1, p.gan_channel:p.gan_channel + 1].double()
            t = target[p.target_layer][i:i + 1, p.target_channel:p.target_channel + 1].double()
            size = max(g.shape[-1], t.shape[-1])
            g = F.interpolate(g, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            acc = 0.0
            for y in range(size):
                for x in range(size):
                    gn = (g[y, x] - p.gan_mean) / p.gan_std if p.gan_std > 0 else 0.0
                    tn = (t[y, x] - p.target_mean) / p.target_std if p.target_std > 0 else 0.0
                    acc += float(gn * tn)
            total += acc / size ** 2
        out.append(total / len(pairs))
    return out


def test_activation_similarity_is_eq6_at_mixed_resolutions():
    gen = torch.Generator().manual_seed(0)
    gan = {"g4": torch.randn(3, 3, 4, 4, generator=gen, dtype=torch.float64) + 5,
           "g8": torch.rand(3, 2, 8, 8, generator=gen, dtype=torch.float64)}
    target = {"d8": torch.randn(3, 4, 8, 8, generator=gen, dtype=torch.float64),
              "d2": torch.rand(3, 2, 2, 2, generator=gen, dtype=torch.float64) * 7}
    pairs = [Pair("g4", 1, "d8", 3, 5.1, 0.9, 0.1, 1.2),  # 4 -> 8 on the G side
             Pair("g8", 0, "d2", 1, 0.4, 0.3, 3.0, 2.0),  # 2 -> 8 on the target side
             Pair("g4", 2, "d2", 0, 4.8, 1.1, 3.3, 2.2),  # 2 -> 4
             Pair("g8", 1, "d8", 0, 0.5, 0.0, 0.0, 1.0)]  # a dead G unit counts 0
    got = activation_similarity(gan, target, pairs)
    assert got.shape == (3,)
    assert got.tolist() == pytest.approx(reference_similarity(gan, target, pairs), abs=1e-12)


def test_identical_normalised_maps_score_their_mean_square():
    maps = {"a": torch.randn(2, 1, 6, 6, dtype=torch.float64)}
    pair = Pair("a", 0, "a", 0, 0.0, 1.0, 0.0, 1.0)
    expected = maps["a"][:, 0].pow(2).mean(dim=(1, 2))
    assert torch.allclose(activation_similarity(maps, maps, [pair]), expected)
    with pytest.raises(UserError, match="no Rosetta pairs"):
        activation_similarity(maps, maps, [])


def test_pairs_are_the_rosetta_units_best_buddies_with_mining_statistics(tmp_path):
    gen = torch.Generator().manual_seed(3)
    scale = torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    gan = {"g": torch.rand(6, 3, 4, 4, generator=gen) * scale}
    disc = {"d": torch.rand(6, 2, 8, 8, generator=gen) + 10}
    acc = CorrelationAccumulator()
    acc.update(gan, disc)
    write_match_store(acc, tmp_path / "m.zarr", gan="G", disc="D")
    store = open_match_store(tmp_path / "m.zarr")
    concepts = pd.DataFrame({"concept": [1, 1, 1], "model": ["G", "D", "G"],
                             "layer": ["g", "d", "g"], "channel": [2, 1, 0],
                             "role": ["gan", "disc", "gan"], "corr": [0.5, 0.5, 0.4]})
    buddies = pd.DataFrame({"gan": "G", "gan_layer": ["g", "g", "g"], "gan_channel": [0, 1, 2],
                            "disc": "D", "disc_layer": "d", "disc_channel": [0, 0, 1],
                            "corr": [0.2, 0.9, 0.6]})
    pairs = rosetta_pairs(concepts, buddies, store)
    # G unit 1 is not a Rosetta unit; the others come most correlated first
    assert [(p.gan_channel, p.target_channel) for p in pairs] == [(2, 1), (0, 0)]
    g_mean, g_std = acc.native_stats("gan")
    d_mean, d_std = acc.native_stats("disc")
    assert pairs[0].gan_mean == pytest.approx(float(g_mean[2]))
    assert pairs[0].gan_std == pytest.approx(float(g_std[2]))
    assert pairs[0].target_mean == pytest.approx(float(d_mean[1]))
    assert pairs[0].target_std == pytest.approx(float(d_std[1]))


def test_regulariser_and_reconstruction_terms():
    z = torch.tensor([[1.0, -3.0], [0.0, 2.0]])
    assert regulariser(z, "l2").tolist() == [5.0, 2.0]
    assert regulariser(z, "l1").tolist() == [2.0, 1.0]
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert reconstruction(a, b, "l2").tolist() == [0.25]
    assert reconstruction(a, b, "l1").tolist() == [0.5]
    with pytest.raises(UserError, match="l1 or l2"):
        regulariser(z, "l3")


def test_learning_rate_ramps_up_holds_and_ramps_down():
    steps, base = 1000, 0.1
    lr = [learning_rate(s, steps, base) for s in range(steps)]
    assert lr[0] == 0.0
    assert lr[25] == pytest.approx(base / 2)  # linear over the first 5%
    assert all(a <= b for a, b in zip(lr[:50], lr[1:51], strict=True))
    assert lr[50] == pytest.approx(base) and lr[600] == pytest.approx(base)
    assert lr[750] == pytest.approx(base)  # the cosine starts at 75%
    assert lr[875] == pytest.approx(base / 2)  # half-way down the cosine
    t = (1 - 950 / steps) / 0.25
    assert lr[950] == pytest.approx(base * (0.5 - 0.5 * math.cos(math.pi * t)))
    assert lr[-1] < 1e-4 * base


def hot(size: int, y: int, x: int) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[0, 0, y, x] = 1.0
    return m


def test_shift_moves_by_a_share_of_each_map_size_with_zero_padding():
    out = editing.shift({"s4": hot(4, 1, 1), "s8": hot(8, 5, 2)}, dx=0.25, dy=-0.25)
    assert out["s4"][0, 0].nonzero().tolist() == [[0, 2]]  # 4x4 moves by 1
    assert out["s8"][0, 0].nonzero().tolist() == [[3, 4]]  # 8x8 moves by 2
    gone = editing.shift({"s4": hot(4, 1, 3)}, dx=0.25)["s4"]
    assert gone.abs().sum() == 0  # moved out, zeros moved in


def test_zoom_in_doubles_about_the_centre():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 3:5, 3:5] = 1.0  # a 2x2 blob at the centre
    out = editing.zoom_in({"a": x})["a"]
    assert out.shape == x.shape
    assert (out[0, 0] > 0.5).sum() == 16  # 4x4 after doubling
    assert torch.equal(out[0, 0], out[0, 0].flip(0)) and torch.equal(out[0, 0], out[0, 0].flip(1))


def test_copy_paste_shows_the_content_twice():
    out = editing.copy_paste({"a": hot(8, 4, 3)}, dx=0.25)["a"][0, 0]
    assert out.nonzero().tolist() == [[4, 1], [4, 5]]


def test_remove_and_scale_touch_only_the_chosen_units():
    gen = torch.Generator().manual_seed(1)
    maps = {"a": torch.rand(2, 3, 4, 4, generator=gen), "b": torch.rand(2, 2, 8, 8, generator=gen)}
    before = {k: v.clone() for k, v in maps.items()}
    out = editing.remove(maps, [("a", 1)])
    lows = maps["a"][:, 1].amin(dim=(1, 2))
    assert torch.equal(out["a"][:, 1], lows[:, None, None].expand(2, 4, 4))
    assert torch.equal(out["a"][:, [0, 2]], maps["a"][:, [0, 2]])
    assert torch.equal(out["b"], maps["b"])
    up = editing.scale(maps, [("b", 0)], 3.0)
    assert torch.allclose(up["b"][:, 0], 3 * maps["b"][:, 0])
    assert torch.equal(up["b"][:, 1], maps["b"][:, 1]) and torch.equal(up["a"], maps["a"])
    assert all(torch.equal(maps[k], before[k]) for k in maps)  # the inputs are not modified


@pytest.fixture(scope="module")
def generator():
    spec, model = models.load("shapes-gan", "random")
    for p in model.parameters():
        p.requires_grad_(False)
    return lambda z: spec.run(model, z), spec


def test_a_short_inversion_raises_the_similarity_and_lowers_the_loss(generator):
    forward, spec = generator
    gen = torch.Generator().manual_seed(2)
    z_true = torch.randn(2, spec.latent.dim, generator=gen)
    with torch.no_grad():
        target_images, target_maps = forward(z_true)
        layer = "up2.act"
        maps = target_maps[layer]
        mean, std = maps.mean(dim=(0, 2, 3)), maps.std(dim=(0, 2, 3))
    pairs = [Pair(layer, c, layer, c, float(mean[c]), float(std[c]), float(mean[c]),
                  float(std[c])) for c in range(maps.shape[1]) if std[c] > 0][:8]
    z0 = torch.randn(2, spec.latent.dim, generator=gen)
    settings = InversionSettings(steps=40, lr=0.1, alpha=0.01)
    start, _ = objective(forward, z0, pairs, target_maps, None, settings)
    z, history = invert(forward, z0, pairs, target_maps, settings, progress=False)
    end, terms = objective(forward, z, pairs, target_maps, None, settings)
    assert len(history) == 40
    assert float(end.mean()) < float(start.mean())
    assert float(terms["act"].mean()) > history[0]["act"]

    # The reconstruction-only baseline of Table 1 (Eq. 7 without L_act) lowers the pixel error
    rec_only = InversionSettings(steps=40, lr=0.1, alpha=0.0, act_weight=0.0, rec_weight=1.0)
    z, history = invert(forward, z0, pairs, target_maps, rec_only, target_images,
                        progress=False)
    _, terms = objective(forward, z, pairs, target_maps, target_images, rec_only)
    assert float(terms["rec"].mean()) < history[0]["rec"]
    assert all(h["act"] == 0.0 for h in history)  # L_act is not computed at weight 0
