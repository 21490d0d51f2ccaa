"""One shard of unit matching for a (G, D) pair (paper, Eq. 1-2).

For images start .. start+count-1 of a seed and subset, the generator makes each image from
its latent (latent i depends only on the seed and i), its hooked layers give the G maps, the
discriminative model sees the image through its own preprocessing and gives the D maps, and
the correlation accumulator takes both. Without a D the generator is matched against itself,
which the Rosetta step needs for BB(G, G). With `nulls`, the accumulator also keeps that
many null permutations of the pairing (`null`), from the same forward passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from .. import models
from ..core.cli import UserError
from ..core.units import ALL
from .correlation import CorrelationAccumulator
from .sampling import (
    Loaded,
    check_finite,
    check_shard,
    generated_batches,
    generator_spec,
    subset_class,
)


@torch.no_grad()
def match_models(gan: Loaded, disc: Loaded | None, seed: int, indices: range, batch_size: int,
                 truncation: float | None = None, device: torch.device | str = "cpu",
                 class_index: int | None = None, nulls: int = 0) -> CorrelationAccumulator:
    """Statistics of loaded (spec, model) pairs over the images `indices` of a seed."""
    acc = CorrelationAccumulator(device=device, nulls=nulls)
    name = f"{gan[0].name} x {disc[0].name if disc else gan[0].name}"
    for batch, (_, _, images, g_maps) in enumerate(generated_batches(
            gan, seed, indices, batch_size, truncation, class_index, device, desc=name)):
        if disc is None:
            acc.update(g_maps, g_maps)
        else:
            d_spec, d_model = disc
            d_maps = d_spec.run(d_model, d_spec.preprocess(images))[1]
            check_finite(d_spec.name, d_maps, indices.start + batch * batch_size)
            acc.update(g_maps, d_maps)
    return acc


def match_shard(gan: str, disc: str | None, weights: Mapping[str, str | Path], seed: int,
                start: int, count: int, batch_size: int, truncation: float | None = None,
                device: torch.device | str = "cpu", subset: str = ALL, nulls: int = 0
                ) -> CorrelationAccumulator:
    """The correlation statistics of images start .. start+count-1 for one (G, D) pair
    (G against itself without `disc`), with `nulls` null permutations; `weights` maps model
    names to weights files."""
    check_shard(start, count, batch_size, nulls)
    g_spec = generator_spec(gan)
    if disc and models.get(disc).kind != models.DISCRIMINATIVE:
        raise UserError(f"{disc} is a {models.get(disc).kind}; match a generator against a "
                        "discriminative model")
    cls = subset_class(g_spec, subset)  # before any weights load
    g = models.load(gan, weights.get(gan), device)
    d = models.load(disc, weights.get(disc), device) if disc else None
    return match_models(g, d, seed, range(start, start + count), batch_size, truncation, device,
                        cls, nulls)
