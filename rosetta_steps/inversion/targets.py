"""Held-out targets for inversion (Table 1, Fig. 1's single neurons): images no run mined.

A generator of the shapes zoo is inverted onto real images of its world (`world.render` at
`world.HELD_OUT_START`), as the paper inverts onto real photos. A generator with no real images
here (the faces zoo's DCGAN: no face photos ship with it) is inverted onto its own images from
latents that no dictionary mines (`GENERATED_START`); the inversions then start from other
unseen latents (`HELD_OUT_START`), so a method cannot win by starting at the answer.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import models
from ..core import world
from ..core.images import to_uint8
from .objective import Forward

HELD_OUT_START = world.HELD_OUT_START  # latents of the inversions' starts
GENERATED_START = 2_000_000  # latent indices of generated targets, beyond any dictionary's


def held_out_targets(spec: models.ModelSpec, forward: Forward, n: int, seed: int,
                     device: torch.device | str = "cpu") -> np.ndarray:
    """uint8 [n, h, w, 3]: real world images for the shapes zoo, else G's unseen images."""
    if "shapes" in spec.tags:
        return world.render(n, seed, start=world.HELD_OUT_START).images
    z = spec.latent.sample(seed, range(GENERATED_START, GENERATED_START + n)).to(device)
    with torch.no_grad():
        return to_uint8(forward(z)[0])
