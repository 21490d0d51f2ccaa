"""The paper's Table 1 on held-out images (Sec. 4.1, Eq. 7; `targets`: real shapes-world
images, or a generator's own images from unseen latents where no real ones ship).

Each target image is inverted into the generator from the same seeded start latents, once
with reconstruction alone (the baseline: pixel L2 by default, or L1 or LPIPS) and once more
with Rosetta guidance added (Eq. 7): from each discriminative model's pairs, and from all of
them together. It reports PSNR, SSIM and, when asked to (`lpips`; it needs AlexNet's cached
weights), LPIPS (`perceptual`) of every method with 95% confidence intervals, and the paired
difference of each guided method to the baseline (same targets, same starts), so whether
guidance helps is measured, not assumed. `inversion_table` returns the metrics and a sheet of
the targets next to every method's inversions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from .. import models
from ..core.cli import UserError
from ..core.images import grid, side_by_side, to_uint8, to_unit_range
from ..core.intervals import interval
from ..mining.concepts import read_concept_table
from . import perceptual
from .guidance import check_guidance_inputs, guidance_by_disc
from .measures import psnr, ssim
from .objective import InversionSettings, generator_forward, invert
from .targets import HELD_OUT_START, held_out_targets

BASELINE = "reconstruction only"


def image_metrics(out: np.ndarray, real: np.ndarray, lpips: bool = False
                  ) -> dict[str, list[float]]:
    """PSNR, SSIM and (with `lpips`) LPIPS of each uint8 image to its target."""
    scores = {"psnr": [psnr(a, b) for a, b in zip(out, real, strict=True)],
              "ssim": [ssim(a, b) for a, b in zip(out, real, strict=True)]}
    if lpips:
        with torch.no_grad():
            scores["lpips"] = perceptual.lpips_distance(to_unit_range(out),
                                                        to_unit_range(real)).tolist()
    return scores


def inversion_table(gan: str, weights: Mapping[str, str], concepts_csv: str,
                    discs: Sequence[str], bestbuddies: Sequence[str], matches: Sequence[str],
                    n: int, seed: int, settings: InversionSettings, beta: float,
                    lpips: bool = False, device: torch.device | str = "cpu"
                    ) -> tuple[dict, Image.Image]:
    """Invert `n` held-out real images by every method; returns (metrics, sheet). With
    `lpips` the metrics include LPIPS, which needs AlexNet's cached weights."""
    if n < 2:
        raise UserError(f"need at least 2 images for confidence intervals, got {n}")
    check_guidance_inputs(discs, bestbuddies, matches)
    if settings.rec == "lpips" or lpips:
        perceptual.require()
    g_spec, g_model = models.load(gan, weights.get(gan), device)
    forward = generator_forward(g_spec, g_model)
    real = held_out_targets(g_spec, forward, n, seed, device)
    targets = to_unit_range(real, device)
    start = HELD_OUT_START
    z0 = g_spec.latent.sample(seed, range(start, start + n)).to(device)
    concepts = read_concept_table(concepts_csv)
    per_disc = guidance_by_disc(concepts, discs, weights, bestbuddies, matches, targets)
    methods = {BASELINE: []} | {f"+ Rosetta ({d})": [d] for d in discs}
    if len(discs) > 1:
        methods["+ Rosetta (all)"] = list(discs)
    results, images = {}, {"target": real}
    for method, guides in methods.items():
        pairs = [p for d in guides for p in per_disc[d][0]]
        target_maps = {k: v for d in guides for k, v in per_disc[d][1].items()}
        run_settings = replace(settings, act_weight=beta if guides else 0.0, rec_weight=1.0)
        z, _ = invert(forward, z0, pairs, target_maps, run_settings, targets)
        with torch.no_grad():
            out = to_uint8(forward(z)[0])
        images[method] = out
        results[method] = image_metrics(out, real, lpips)
        results[method]["pairs"] = len(pairs)
    metrics = {"images": n, "seed": seed, "steps": settings.steps, "lr": settings.lr,
               "alpha": settings.alpha, "beta": beta, "rec": settings.rec, "methods": {}}
    for method, r in results.items():
        entry = {"pairs": r.pop("pairs")} | {k: interval(v) for k, v in r.items()}
        if method != BASELINE:
            entry |= {f"{k}_gain": interval(np.subtract(v, results[BASELINE][k]))
                      for k, v in r.items()}
        metrics["methods"][method] = entry
    shown = min(n, 8)
    sheet = side_by_side({name: grid(im[:shown], cols=1) for name, im in images.items()})
    return metrics, sheet
