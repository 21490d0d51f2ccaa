"""The pixel control's pseudo-model (`models.pixels`): every channel against its direct
computation with scikit-image or scipy on random images, mirrored borders included."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2hsv, rgb2lab
from skimage.filters import gabor

from rosetta_steps import models
from rosetta_steps.models.pixels import (
    BLUR_SIGMAS,
    GABOR_ANGLES,
    GABOR_WAVELENGTHS,
    LAYERS,
    Pixels,
)


@pytest.fixture(scope="module")
def measured():
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 3))
    images[0, :4, :4] = 0.5  # grey pixels: no hue
    with torch.no_grad():
        out = Pixels(size=64)(torch.from_numpy(images).permute(0, 3, 1, 2).float())
    sizes = [3, 3, 3, 3, 1, 8]
    parts = dict(zip(LAYERS, torch.split(out, sizes, dim=1), strict=True))
    luma = images @ np.array([0.299, 0.587, 0.114])
    return images, {k: v.double().numpy() for k, v in parts.items()}, luma


def test_colour_channels_are_scikit_images(measured):
    images, got, _ = measured
    np.testing.assert_allclose(got["rgb"], images.transpose(0, 3, 1, 2), atol=1e-6)
    lab = np.stack([rgb2lab(im) for im in images]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got["lab"], lab, atol=2e-3)
    hsv = np.stack([rgb2hsv(im) for im in images]).transpose(0, 3, 1, 2)
    angle = 2 * math.pi * hsv[:, 0]
    grey = images.max(-1) == images.min(-1)
    np.testing.assert_allclose(got["hsv"][:, 0], np.where(grey, 0, np.sin(angle)), atol=1e-4)
    np.testing.assert_allclose(got["hsv"][:, 1], np.where(grey, 0, np.cos(angle)), atol=1e-4)
    np.testing.assert_allclose(got["hsv"][:, 2], hsv[:, 1], atol=1e-5)
    assert (got["hsv"][0, :2, :4, :4] == 0).all()


def test_blur_sobel_and_gabor_are_scipys_and_scikit_images(measured):
    _, got, luma = measured
    radius = math.ceil(3 * max(BLUR_SIGMAS))
    for i, sigma in enumerate(BLUR_SIGMAS):
        ref = np.stack([ndimage.gaussian_filter(y, sigma, mode="mirror", radius=radius)
                        for y in luma])
        np.testing.assert_allclose(got["blur"][:, i], ref, atol=1e-5)
    sobel = np.stack([np.hypot(ndimage.sobel(y, 0, mode="mirror"),
                               ndimage.sobel(y, 1, mode="mirror")) for y in luma])
    np.testing.assert_allclose(got["sobel"][:, 0], sobel, atol=1e-4)
    channel = 0
    for wavelength in GABOR_WAVELENGTHS:
        for angle in GABOR_ANGLES:
            ref = np.stack([np.hypot(*gabor(y, 1 / wavelength, theta=math.radians(angle),
                                            mode="mirror")) for y in luma])
            np.testing.assert_allclose(got["gabor"][:, channel], ref, atol=1e-4)
            channel += 1


def test_the_registered_models_hook_every_group_at_their_resolution():
    for name, size in (("pixels", 64), ("pixels-256", 256)):
        spec = models.get(name)
        assert [(s.name, s.channels, s.size) for s in spec.layer_specs()] == [
            ("rgb", 3, size), ("lab", 3, size), ("hsv", 3, size), ("blur", 3, size),
            ("sobel", 1, size), ("gabor", 8, size)]
    spec, model = models.load("pixels")
    images = torch.rand(2, 3, 64, 64) * 2 - 1  # what a generator gives
    _, maps = spec.run(model, spec.preprocess(images))
    torch.testing.assert_close(maps["rgb"], (images + 1) / 2)
