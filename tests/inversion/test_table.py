"""The inversion table's measures (the paper's Table 1): PSNR, SSIM and confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from rosetta_steps import models
from rosetta_steps.core import world
from rosetta_steps.core.cli import UserError
from rosetta_steps.core.images import to_uint8
from rosetta_steps.core.intervals import interval
from rosetta_steps.inversion.measures import psnr, ssim
from rosetta_steps.inversion.objective import InversionSettings, generator_forward
from rosetta_steps.inversion.table import inversion_table
from rosetta_steps.inversion.targets import GENERATED_START, HELD_OUT_START, held_out_targets


def test_psnr_follows_its_definition():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert psnr(a, a) == float("inf")


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, noisy) < 0.9


def test_interval_is_the_95_percent_t_interval():
    x = [1.0, 2.0, 4.0, 7.0]
    got = interval(x)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert got["mean"] == pytest.approx(3.5)
    assert got["ci95"] == pytest.approx((high - low) / 2)


def test_table_needs_two_images_and_one_table_per_d():
    with pytest.raises(UserError, match="at least 2 images"):
        inversion_table("shapes-gan", {}, "c.csv", ["shapes-cnn-sup"], ["b.csv"], ["m.zarr"],
                        1, 0, InversionSettings(), 1.0)
    with pytest.raises(UserError, match="one best-buddy table and one match store per D"):
        inversion_table("shapes-gan", {}, "c.csv", ["shapes-cnn-sup"], [], ["m.zarr"],
                        4, 0, InversionSettings(), 1.0)


def test_held_out_targets_are_real_world_images_or_unseen_generated_ones():
    spec, g = models.load("shapes-gan", weights="random")
    real = held_out_targets(spec, generator_forward(spec, g), 3, seed=4)
    assert np.array_equal(real, world.render(3, 4, start=world.HELD_OUT_START).images)
    spec, g = models.load("faces-dcgan", weights="random")
    got = held_out_targets(spec, generator_forward(spec, g), 3, seed=4)
    z = spec.latent.sample(4, range(GENERATED_START, GENERATED_START + 3))
    with torch.no_grad():
        assert np.array_equal(got, to_uint8(g(z)))
    assert GENERATED_START >= HELD_OUT_START + 10 ** 6  # the starts never reach the targets
