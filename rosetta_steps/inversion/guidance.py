"""Rosetta guidance of an inversion by discriminative models (paper, Sec. 4.1): the pairs that
Eq. 6 averages over, each a Rosetta G unit of the dictionary and its best buddy in one D with
both units' mining statistics (Eq. 1), and that D's maps of the target images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd
import torch
import xarray as xr

from .. import models
from ..core.cli import UserError
from ..core.stores import open_match_store, unit_stats
from ..core.units import Unit
from ..mining.buddies import read_best_buddies
from .objective import Pair


def rosetta_pairs(concepts: pd.DataFrame, buddies: pd.DataFrame, store: xr.Dataset
                  ) -> list[Pair]:
    """The pairs of one (G, D) that Eq. 6 averages over: the best buddies (`bestbuddies`
    table) of the dictionary's Rosetta G units (`rosetta` table), with the mining statistics
    of the pair's match store."""
    gan, disc = store.attrs["gan"], store.attrs["disc"]
    rosetta = {(str(r.layer), int(r.channel)) for r in concepts.itertuples()
               if r.role == "gan" and r.model == gan}
    g_stats, d_stats = unit_stats(store, "gan", gan), unit_stats(store, "disc", disc)
    pairs = []
    for r in buddies.sort_values("corr", ascending=False, kind="stable").itertuples():
        if (str(r.gan_layer), int(r.gan_channel)) not in rosetta:
            continue
        g = g_stats[Unit(gan, str(r.gan_layer), int(r.gan_channel))]
        d = d_stats[Unit(disc, str(r.disc_layer), int(r.disc_channel))]
        pairs.append(Pair(str(r.gan_layer), int(r.gan_channel), str(r.disc_layer),
                          int(r.disc_channel), g[0], g[1], d[0], d[1]))
    return pairs


def disc_guidance(concepts: pd.DataFrame, name: str, loaded: tuple, images: torch.Tensor,
                  bestbuddies: str, matches: str) -> tuple[list[Pair], dict[str, torch.Tensor]]:
    """One D's Rosetta pairs and its maps of the targets; its layers are named `D/layer` so
    that several Ds can guide one inversion together."""
    spec, model = loaded
    found = rosetta_pairs(concepts, read_best_buddies(bestbuddies), open_match_store(matches))
    with torch.no_grad():
        maps = spec.run(model, spec.preprocess(images))[1]
    return ([replace(p, target_layer=f"{name}/{p.target_layer}") for p in found],
            {f"{name}/{layer}": m for layer, m in maps.items()})


def check_guidance_inputs(discs: Sequence[str], bestbuddies: Sequence[str],
                          matches: Sequence[str]) -> None:
    if not len(discs) == len(bestbuddies) == len(matches):
        raise UserError("give one best-buddy table and one match store per D, in D order")


def guidance_by_disc(concepts: pd.DataFrame, discs: Sequence[str], weights: Mapping[str, str],
                     bestbuddies: Sequence[str], matches: Sequence[str], images: torch.Tensor
                     ) -> dict[str, tuple[list[Pair], dict[str, torch.Tensor]]]:
    """`disc_guidance` of every D on the target images (each D loaded on their device)."""
    check_guidance_inputs(discs, bestbuddies, matches)
    return {d: disc_guidance(concepts, d, models.load(d, weights.get(d), images.device),
                             images, b, m)
            for d, b, m in zip(discs, bestbuddies, matches, strict=True)}
