"""Rosetta-guided inversion (Sec. 4.1 of the paper, Eq. 5-7).

The generator's latent z is optimised so that the maps of its Rosetta units correlate, image
by image, with the maps of their partner units computed on a target: D's maps of a target
image (inversion), or G's own maps after an edit (Sec. 4.2, `editing`). The correlation of a
pair (Eq. 6) centres and scales each map with the unit's mean and std from mining (Eq. 1,
kept in the match stores) and sums over pixels; here the sum is divided by the pixel count,
so that L_act is a mean of per-image Pearson-like similarities whatever the map size. As in
mining, the two maps are bilinearly resized (align_corners=False) to the larger size.

    loss(z) = rec_weight * L_rec(G(z), I) + alpha * L_reg(z) - act_weight * L_act(z, I)

is Eq. 7; with rec_weight 0 and act_weight 1 it is Eq. 5. Eq. 6 is not bounded: the
optimiser can raise it by inflating G's maps wherever the target is above its mean, which
ruins the image when nothing else holds it (measured on the shapes zoo's edits: L_act went
from 0.6 to 8 and the pictures burnt out). `similarity="distance"` replaces it with the
negative mean squared difference of the same normalised maps, whose best is the target.

Adam with the learning rate of `learning_rate`: ramped up linearly over the first 5% of the
steps, down to zero by a cosine over the last 25% (the paper's schedule, from the StyleGAN
projector).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.cli import UserError
from ..models import ModelSpec
from .perceptual import lpips_distance


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


def _normalised(maps: Mapping[str, torch.Tensor], layer: str, channels: Sequence[int],
                mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[batch, units, h, w]: the listed channels of a layer, centred and scaled by the mining
    statistics; a unit with zero std contributes zeros (it correlates 0, as in mining)."""
    if layer not in maps:
        raise UserError(f"no maps of layer {layer!r}; have {', '.join(maps)}")
    x = maps[layer]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    live = s > 0
    return (x[:, list(channels)] - m) / torch.where(live, s, torch.ones_like(s)) * live


def _resized(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _paired_maps(gan_maps: Mapping[str, torch.Tensor], target_maps: Mapping[str, torch.Tensor],
                 pairs: Sequence[Pair]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The pairs' two normalised maps, resized to the larger of their sizes: one
    ([batch, units, s, s], same shape) couple per (G layer, target layer), so that a step
    costs a few batched operations however many pairs there are."""
    if not pairs:
        raise UserError("no Rosetta pairs to invert with: the dictionary has no concepts")
    groups: dict[tuple[str, str], list[Pair]] = {}
    for p in pairs:
        groups.setdefault((p.gan_layer, p.target_layer), []).append(p)
    out = []
    for (g_layer, t_layer), group in groups.items():
        g = _normalised(gan_maps, g_layer, [p.gan_channel for p in group],
                        [p.gan_mean for p in group], [p.gan_std for p in group])
        t = _normalised(target_maps, t_layer, [p.target_channel for p in group],
                        [p.target_mean for p in group], [p.target_std for p in group])
        size = max(g.shape[-1], t.shape[-1])
        out.append((_resized(g, size), _resized(t, size)))
    return out


def activation_similarity(gan_maps: Mapping[str, torch.Tensor],
                          target_maps: Mapping[str, torch.Tensor],
                          pairs: Sequence[Pair]) -> torch.Tensor:
    """L_act (Eq. 6) of each image, [batch]: the mean over pairs of the pixel mean of the
    product of the two normalised maps, both resized to the larger of their sizes."""
    paired = _paired_maps(gan_maps, target_maps, pairs)
    return sum((g * t).mean(dim=(2, 3)).sum(dim=1) for g, t in paired) / len(pairs)


def activation_distance(gan_maps: Mapping[str, torch.Tensor],
                        target_maps: Mapping[str, torch.Tensor],
                        pairs: Sequence[Pair]) -> torch.Tensor:
    """The mean over pairs of the pixel mean of the squared difference of the same normalised
    maps as Eq. 6, [batch]. It equals the maps' two mean squares minus twice Eq. 6, so it
    rewards the same agreement but, unlike Eq. 6, cannot be raised by inflating G's maps:
    its minimum is the target itself, which is what an edit asks for."""
    paired = _paired_maps(gan_maps, target_maps, pairs)
    return sum((g - t).pow(2).mean(dim=(2, 3)).sum(dim=1) for g, t in paired) / len(pairs)


SIMILARITIES = {"correlation": activation_similarity,
                "distance": lambda g, t, p: -activation_distance(g, t, p)}


def regulariser(z: torch.Tensor, kind: str) -> torch.Tensor:
    """L_reg of each latent, [batch]: mean square ('l2') or mean absolute value ('l1')."""
    if kind == "l2":
        return z.pow(2).flatten(1).mean(dim=1)
    if kind == "l1":
        return z.abs().flatten(1).mean(dim=1)
    raise UserError(f"regulariser must be l1 or l2, got {kind!r}")


def reconstruction(images: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """L_rec of each image, [batch]: pixel L1 or L2 (mean over pixels and channels), or
    LPIPS (`perceptual`, when AlexNet's weights are cached)."""
    if kind == "lpips":
        return lpips_distance(images, target)
    diff = (images - target).flatten(1)
    if kind == "l2":
        return diff.pow(2).mean(dim=1)
    if kind == "l1":
        return diff.abs().mean(dim=1)
    raise UserError(f"reconstruction loss must be l1, l2 or lpips, got {kind!r}")


def learning_rate(step: int, steps: int, base: float, rampup: float = 0.05,
                  rampdown: float = 0.25) -> float:
    """The rate at `step` of `steps`: linear from 0 over the first `rampup` share, cosine
    down to 0 over the last `rampdown` share, `base` in between."""
    t = step / steps
    up = min(1.0, t / rampup) if rampup > 0 else 1.0
    down = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    return base * up * (0.5 - 0.5 * math.cos(math.pi * down))


@dataclass(frozen=True)
class InversionSettings:
    """The inversion's settings (params.yaml's `inversion`)."""

    steps: int = 500
    lr: float = 0.1  # the paper: 0.1 for StyleGAN2-like generators, 0.01 for BigGAN-like
    alpha: float = 0.1
    reg: str = "l2"
    act_weight: float = 1.0
    rec_weight: float = 0.0
    rec: str = "l2"
    similarity: str = "correlation"  # L_act: Eq. 6, or "distance" (see activation_distance)


# forward(z) -> (images in [-1, 1], {layer: G maps}), with the class and truncation bound
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


def generator_forward(spec: ModelSpec, model: torch.nn.Module, class_index: int | None = None,
                      truncation: float | None = None) -> Forward:
    """The `Forward` of a loaded generator (its weights frozen) for one class and truncation."""
    for p in model.parameters():
        p.requires_grad_(False)

    def forward(z: torch.Tensor) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        y = None if class_index is None else torch.full((len(z),), class_index,
                                                        dtype=torch.long, device=z.device)
        return spec.run(model, z, y, truncation)

    return forward


def objective(forward: Forward, z: torch.Tensor, pairs: Sequence[Pair],
              target_maps: Mapping[str, torch.Tensor], target_images: torch.Tensor | None,
              settings: InversionSettings) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of Eq. 7 per image, [batch], and its terms (detached)."""
    images, maps = forward(z)
    act = SIMILARITIES[settings.similarity](maps, target_maps, pairs) if settings.act_weight \
        else torch.zeros(len(z), device=z.device)
    reg = regulariser(z, settings.reg)
    rec = (reconstruction(images, target_images, settings.rec)
           if settings.rec_weight and target_images is not None
           else torch.zeros(len(z), device=z.device))
    loss = settings.rec_weight * rec + settings.alpha * reg - settings.act_weight * act
    return loss, {"act": act.detach(), "reg": reg.detach(), "rec": rec.detach()}


def invert(forward: Forward, z0: torch.Tensor, pairs: Sequence[Pair],
           target_maps: Mapping[str, torch.Tensor], settings: InversionSettings,
           target_images: torch.Tensor | None = None, progress: bool = True
           ) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Optimise z from `z0` (one latent per target image) with Adam; returns the final
    latents and the loss terms of every step (means over the batch)."""
    if settings.steps < 1:
        raise UserError(f"inversion steps must be at least 1, got {settings.steps}")
    if settings.similarity not in SIMILARITIES:
        raise UserError(f"similarity must be one of {', '.join(SIMILARITIES)}, "
                        f"got {settings.similarity!r}")
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
