"""`python -m rosetta_steps.invert`: the paper's Table 1 on held-out real shapes-world images.

Each target image is inverted into the generator from the same seeded start latents, once
with reconstruction alone (the baseline: pixel L2 by default, or L1 or LPIPS) and once more
with Rosetta guidance added (Eq. 7): from each discriminative model's pairs, and from all of
them together. The step reports PSNR, SSIM and, when AlexNet's weights are cached, LPIPS
(`perceptual`) of every method with 95% confidence intervals, and the paired difference of
each guided method to the baseline (same targets, same starts), so whether guidance helps is
measured, not assumed. It writes the metrics (JSON) and a sheet of the targets next to every
method's inversions (PNG).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from . import models, perceptual, shapes
from .cli import UserError, parse_weights, run
from .devices import add_device_options, resolve_device, set_threads
from .inversion import (
    Settings,
    add_guidance_options,
    add_optimiser_options,
    check_guidance_inputs,
    generator_forward,
    guidance_by_disc,
    invert,
    settings_from,
)
from .measures import interval
from .rosetta import read_concept_table
from .sample import to_uint8
from .samplesheet import grid, side_by_side
from .stores import atomic_output
from .training.data import HELD_OUT_START

BASELINE = "reconstruction only"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 [h, w, 3] images (scikit-image, Gaussian window as Wang et al.)."""
    return float(structural_similarity(a, b, channel_axis=2, data_range=255,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def to_unit_range(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [n, h, w, 3] images as a [n, 3, h, w] tensor in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)


def image_metrics(out: np.ndarray, real: np.ndarray) -> dict[str, list[float]]:
    """PSNR, SSIM and (when AlexNet's weights are cached) LPIPS of each uint8 image to its
    target."""
    scores = {"psnr": [psnr(a, b) for a, b in zip(out, real, strict=True)],
              "ssim": [ssim(a, b) for a, b in zip(out, real, strict=True)]}
    if perceptual.available():
        with torch.no_grad():
            scores["lpips"] = perceptual.lpips_distance(to_unit_range(out),
                                                        to_unit_range(real)).tolist()
    return scores


def inversion_table(gan: str, weights: Mapping[str, str], concepts_csv: str,
                    discs: Sequence[str], bestbuddies: Sequence[str], matches: Sequence[str],
                    n: int, seed: int, settings: Settings, beta: float, device: str = "cpu"
                    ) -> tuple[dict, Image.Image]:
    """Invert `n` held-out real images by every method; returns (metrics, sheet)."""
    if n < 2:
        raise UserError(f"need at least 2 images for confidence intervals, got {n}")
    check_guidance_inputs(discs, bestbuddies, matches)
    if settings.rec == "lpips":
        perceptual.require()
    dev = resolve_device(device)
    g_spec, g_model = models.load(gan, weights.get(gan), dev)
    forward = generator_forward(g_spec, g_model)
    real = shapes.render(n, seed, start=HELD_OUT_START).images
    targets = to_unit_range(real, dev)
    z0 = g_spec.latent.sample(seed, range(HELD_OUT_START, HELD_OUT_START + n)).to(dev)
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
        results[method] = image_metrics(out, real)
        results[method]["pairs"] = len(pairs)
    metrics = {"images": n, "seed": seed, "steps": settings.steps, "lr": settings.lr,
               "alpha": settings.alpha, "beta": beta, "rec": settings.rec, "methods": {}}
    if not perceptual.available():
        metrics["lpips"] = f"not measured: no {perceptual.alexnet_weights()}"
    for method, r in results.items():
        entry = {"pairs": r.pop("pairs")} | {k: interval(v) for k, v in r.items()}
        if method != BASELINE:
            entry |= {f"{k}_gain": interval(np.subtract(v, results[BASELINE][k]))
                      for k, v in r.items()}
        metrics["methods"][method] = entry
    shown = min(n, 8)
    sheet = side_by_side({name: grid(im[:shown], cols=1) for name, im in images.items()})
    return metrics, sheet


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.invert",
                                     description=__doc__.split("\n\n")[0])
    add_guidance_options(parser)
    parser.add_argument("--images", type=int, default=32, help="held-out target images")
    add_optimiser_options(parser)
    parser.add_argument("--rec", choices=("l1", "l2", "lpips"), default="l2",
                        help="reconstruction loss (lpips: needs AlexNet's cached weights)")
    parser.add_argument("--beta", type=float, default=1.0, help="Rosetta guidance weight")
    add_device_options(parser)
    parser.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = settings_from(args, rec=args.rec)
    metrics, sheet = inversion_table(args.gan, parse_weights(args.weights), args.concepts,
                                     args.discs, args.bestbuddies, args.matches, args.images,
                                     args.seed, settings, args.beta, args.device)
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")
    with atomic_output(args.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    for method, m in metrics["methods"].items():
        lpips = f"   LPIPS {m['lpips']['mean']:.3f} ± {m['lpips']['ci95']:.3f}" \
            if "lpips" in m else ""
        print(f"{method:<28} PSNR {m['psnr']['mean']:6.2f} ± {m['psnr']['ci95']:.2f}   "
              f"SSIM {m['ssim']['mean']:.3f} ± {m['ssim']['ci95']:.3f}{lpips}")


if __name__ == "__main__":
    raise SystemExit(run(main))
