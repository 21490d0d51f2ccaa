"""Face part masks (core.faceparts): each part by hand on a synthetic image with known
landmarks and box, the skin colour rule on known pixel values, and O-Net's landmarks on the
faces zoo's generated faces (the real files, cached by `make weights`)."""

import numpy as np
import pytest
import torch

from rosetta_steps import models
from rosetta_steps.core.faceparts import Faces, face_labels, part_masks, skin_colour

SKIN, GREEN = (200, 140, 110), (30, 200, 30)  # Cr 160.4, Cb 102.9; Cr 56.8, Cb 71.7


def test_the_skin_rule_is_chai_and_ngans_ycrcb_range():
    pixels = np.array([[SKIN, GREEN, (255, 255, 255), (0, 0, 0), (180, 80, 60)]], np.uint8)
    # white and black: Cr = Cb = 128, Cr below 133; (180, 80, 60): Cr 179.6, above 173
    assert skin_colour(pixels).tolist() == [[True, False, False, False, False]]


def test_parts_by_hand_on_known_landmarks():
    """A 40 x 40 image, skin-coloured in its lower 30 rows, green above; eyes at (10, 15) and
    (30, 15): inter-ocular distance 20, so eye discs of radius 5, a nose disc of 5 at (20, 22),
    a mouth capsule of radius 4 from (14, 30) to (26, 30); face box x 5-35, y 5-38."""
    image = np.zeros((1, 40, 40, 3), np.uint8)
    image[0, :10], image[0, 10:] = GREEN, SKIN
    faces = Faces(prob=np.array([1.0]), box=np.array([[5.0, 5.0, 35.0, 38.0]]),
                  landmarks=np.array([[[10, 15], [30, 15], [20, 22], [14, 30], [26, 30]]],
                                     dtype=float))
    m = {k: v[0] for k, v in part_masks(image, faces).items()}
    y, x = np.mgrid[0:40, 0:40] + 0.5
    eye = (np.hypot(x - 10, y - 15) <= 5) | (np.hypot(x - 30, y - 15) <= 5)
    assert (m["eye"] == eye).all() and m["eye"][14, 9] and not m["eye"][14, 4]
    assert (m["nose"] == (np.hypot(x - 20, y - 22) <= 5)).all()
    mouth = ((np.abs(y - 30) <= 4) & (x >= 14) & (x <= 26)) | (np.hypot(x - 14, y - 30) <= 4) \
        | (np.hypot(x - 26, y - 30) <= 4)
    assert (m["mouth"] == mouth).all()
    box = (x >= 5) & (x < 35) & (y >= 5) & (y < 38)
    assert (m["skin"] == (box & (y > 10) & ~eye & ~mouth)).all()
    # hair: green (not skin) above the eye discs (y < 10) inside the box grown 1.5 times
    # about its centre (20, 21.5): |x - 20| < 22.5, |y - 21.5| < 24.75, so the whole top band
    assert (m["hair"] == (y < 10)).all()
    assert (m["background"] == (~box & (y > 10))).all()


def test_onet_finds_the_dcgan_faces_landmarks_in_place():
    for name in ("faces-dcgan", "mtcnn-onet"):
        if models.get(name).source.cached() is None:
            pytest.skip(f"{name}'s file is not cached (make weights)")
    g_spec, g = models.load("faces-dcgan")
    with torch.no_grad():
        images = g(g_spec.latent.sample(seed=0, indices=range(64)))
    kept, masks, faces = face_labels(models.load("mtcnn-onet"), images)
    assert kept.mean() > 0.8 and all(m.shape == (kept.sum(), 64, 64) for m in masks.values())
    x, y = faces.landmarks[kept, :, 0], faces.landmarks[kept, :, 1]
    box = faces.box[kept]
    inside = ((x >= box[:, :1]) & (x <= box[:, 2:3]) & (y >= box[:, 1:2])
              & (y <= box[:, 3:])).all(axis=1)
    assert inside.mean() >= 0.9
    assert (x[:, 0] < x[:, 1]).mean() >= 0.9  # the left eye left of the right one
    assert (y[:, 2] > y[:, :2].max(axis=1)).mean() >= 0.9  # the nose below the eyes
