"""Rosetta-guided inversion (Sec. 4.1 of the paper, Eq. 5-7).

The generator's latent z is optimised so that the maps of its Rosetta units correlate, image
by image, with the maps of their partner units computed on a target: D's maps of a target
image (inversion), or G's own maps after an edit (Sec. 4.2, `edits`). The correlation of a
pair (Eq. 6) centres and scales each map with the unit's mean and std from mining (Eq. 1,
kept in the match stores) and sums over pixels; here the sum is divided by the pixel count,
so that L_act is a mean of per-image Pearson-like similarities whatever the map size. As in
mining, the two maps are bilinearly resized (align_corners=False) to the larger size.

    loss(z) = rec_weight * L_rec(G(z), I) + alpha * L_reg(z) - act_weight * L_act(z, I)

is Eq. 7; with rec_weight 0 and act_weight 1 it is Eq. 5. Adam with the learning rate of
`learning_rate`: ramped up linearly over the first 5% of the steps, down to zero by a cosine
over the last 25% (the paper's schedule, from the StyleGAN projector).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from tqdm import tqdm

from .cli import UserError
from .heatmaps import Unit, unit_stats


@dataclass(frozen=True)
class Pair:
    """A Rosetta pair: a G unit and its partner unit on the target side, with the mining
    statistics (Eq. 1) of both at their native resolutions."""

    gan_layer: str
    gan_channel: int
    target_layer: str
    target_channel: int
    gan_mean: float
    gan_std: float
    target_mean: float
    target_std: float


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


def _normalised(maps: Mapping[str, torch.Tensor], layers: Sequence[str],
                channels: Sequence[int], mean: Sequence[float], std: Sequence[float]
                ) -> list[torch.Tensor]:
    """[batch, h, w] maps of the listed units, centred and scaled by the mining statistics;
    a unit with zero std contributes zeros (it correlates 0, as in mining)."""
    out = []
    for layer, channel, m, s in zip(layers, channels, mean, std, strict=True):
        if layer not in maps:
            raise UserError(f"no maps of layer {layer!r}; have {', '.join(maps)}")
        x = maps[layer][:, channel]
        out.append((x - m) / s if s > 0 else torch.zeros_like(x))
    return out


def _resized(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x[:, None], size=(size, size), mode="bilinear",
                         align_corners=False)[:, 0]


def activation_similarity(gan_maps: Mapping[str, torch.Tensor],
                          target_maps: Mapping[str, torch.Tensor],
                          pairs: Sequence[Pair]) -> torch.Tensor:
    """L_act (Eq. 6) of each image, [batch]: the mean over pairs of the pixel mean of the
    product of the two normalised maps, both resized to the larger of their sizes."""
    if not pairs:
        raise UserError("no Rosetta pairs to invert with: the dictionary has no concepts")
    g = _normalised(gan_maps, [p.gan_layer for p in pairs], [p.gan_channel for p in pairs],
                    [p.gan_mean for p in pairs], [p.gan_std for p in pairs])
    t = _normalised(target_maps, [p.target_layer for p in pairs],
                    [p.target_channel for p in pairs], [p.target_mean for p in pairs],
                    [p.target_std for p in pairs])
    total = 0.0
    for gj, tk in zip(g, t, strict=True):
        size = max(gj.shape[-1], tk.shape[-1])
        total = total + (_resized(gj, size) * _resized(tk, size)).mean(dim=(1, 2))
    return total / len(pairs)


def regulariser(z: torch.Tensor, kind: str) -> torch.Tensor:
    """L_reg of each latent, [batch]: mean square ('l2') or mean absolute value ('l1')."""
    if kind == "l2":
        return z.pow(2).flatten(1).mean(dim=1)
    if kind == "l1":
        return z.abs().flatten(1).mean(dim=1)
    raise UserError(f"regulariser must be l1 or l2, got {kind!r}")


def reconstruction(images: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """L_rec of each image, [batch]: pixel L1 or L2 (mean over pixels and channels)."""
    diff = (images - target).flatten(1)
    if kind == "l2":
        return diff.pow(2).mean(dim=1)
    if kind == "l1":
        return diff.abs().mean(dim=1)
    raise UserError(f"reconstruction loss must be l1 or l2, got {kind!r}")


def learning_rate(step: int, steps: int, base: float, rampup: float = 0.05,
                  rampdown: float = 0.25) -> float:
    """The rate at `step` of `steps`: linear from 0 over the first `rampup` share, cosine
    down to 0 over the last `rampdown` share, `base` in between."""
    t = step / steps
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    down = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    return base * up * (0.5 - 0.5 * math.cos(math.pi * down))


@dataclass(frozen=True)
class Settings:
    """The inversion's settings (params.yaml's `inversion`)."""

    steps: int = 500
    lr: float = 0.1  # the paper: 0.1 for StyleGAN2-like generators, 0.01 for BigGAN-like
    alpha: float = 0.1
    reg: str = "l2"
    act_weight: float = 1.0
    rec_weight: float = 0.0
    rec: str = "l2"


# forward(z) -> (images in [-1, 1], {layer: G maps}); the caller binds class and truncation
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


def objective(forward: Forward, z: torch.Tensor, pairs: Sequence[Pair],
              target_maps: Mapping[str, torch.Tensor], target_images: torch.Tensor | None,
              settings: Settings) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of Eq. 7 per image, [batch], and its terms (detached)."""
    images, maps = forward(z)
    act = activation_similarity(maps, target_maps, pairs) if settings.act_weight else \
        torch.zeros(len(z), device=z.device)
    reg = regulariser(z, settings.reg)
    rec = (reconstruction(images, target_images, settings.rec)
           if settings.rec_weight and target_images is not None
           else torch.zeros(len(z), device=z.device))
    loss = settings.rec_weight * rec + settings.alpha * reg - settings.act_weight * act
    return loss, {"act": act.detach(), "reg": reg.detach(), "rec": rec.detach()}


def invert(forward: Forward, z0: torch.Tensor, pairs: Sequence[Pair],
           target_maps: Mapping[str, torch.Tensor], settings: Settings,
           target_images: torch.Tensor | None = None, progress: bool = True
           ) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Optimise z from `z0` (one latent per target image) with Adam; returns the final
    latents and the loss terms of every step (means over the batch)."""
    if settings.steps < 1:
        raise UserError(f"inversion steps must be at least 1, got {settings.steps}")
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=settings.lr)
    target_maps = {k: v.detach() for k, v in target_maps.items()}
    history = []
    for step in tqdm(range(settings.steps), desc="invert", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, settings.steps, settings.lr)
        loss, terms = objective(forward, z, pairs, target_maps, target_images, settings)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        history.append({"loss": float(loss.detach().mean()),
                        **{k: float(v.mean()) for k, v in terms.items()}})
    return z.detach(), history
