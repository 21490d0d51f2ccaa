"""Inversions to look at: single Rosetta neurons (Fig. 1) and out-of-distribution targets
(Fig. 5), each as one sheet.

Single neurons (`neuron_sheet`, Sec. 4.1): for each concept, its strongest pair with one
discriminative model D (the G unit and the D unit of highest correlation), the held-out
image (`targets`) where the D unit is most active among `candidates`, and the D unit's map of
it. G is then inverted against that one map (Eq. 6 for one pair, in its distance form, see
`objective`) from several random starts. What the results share is what the neuron stands
for; what differs is free (Fig. 1's right columns: "red colour" rather than "hat").

Out of distribution (`ood_sheet`): sketches and cartoons (data/ood, drawn by
workflow/scripts/make_ood_targets.py) are inverted into the generator twice from the same
seeded starts: by their pixels alone (reconstruction, which copies the style as far as G
can), and by the Rosetta maps that every discriminative model computes on them alone (Eq. 5,
no pixel term), which keeps the layout and lets G render it in its own style. The distance
form of L_act is used, as Eq. 6's product is unbounded without a pixel term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import models
from ..core.cli import UserError
from ..core.images import (
    grid,
    heat_colours,
    label,
    read_images,
    side_by_side,
    to_uint8,
    to_unit_range,
)
from ..mining.concepts import read_concept_table
from .guidance import check_guidance_inputs, disc_guidance, guidance_by_disc
from .objective import InversionSettings, Pair, generator_forward, invert
from .targets import held_out_targets

NEURON_START = 3 * 10 ** 9  # latent indices of the random starts, beyond any dictionary's images


def strongest_pairs(concepts, pairs: Sequence[Pair], gan: str) -> dict[int, Pair]:
    """Each concept's pair of highest correlation (`pairs` come sorted by correlation)."""
    rows = concepts[(concepts.role == "gan") & (concepts.model == gan)]
    concept_of = {(str(r.layer), int(r.channel)): int(r.concept) for r in rows.itertuples()}
    out: dict[int, Pair] = {}
    for p in pairs:
        c = concept_of.get((p.gan_layer, p.gan_channel))
        if c is not None and c not in out:
            out[c] = p
    return dict(sorted(out.items()))


def neuron_sheet(gan: str, weights: Mapping[str, str], concepts_csv: str, disc: str,
                 bestbuddies: str, matches: str, starts: int, candidates: int, seed: int,
                 settings: InversionSettings, device: torch.device | str = "cpu") -> Image.Image:
    """One row per concept: label, target, D map, and `starts` inversions."""
    if starts < 1 or candidates < 1:
        raise UserError(f"need at least one start and one candidate, got {starts}, "
                        f"{candidates}")
    spec, model = models.load(gan, weights.get(gan), device)
    forward = generator_forward(spec, model)
    real = held_out_targets(spec, forward, candidates, seed, device)
    images = to_unit_range(real, device)
    concepts = read_concept_table(concepts_csv)
    pairs, maps = disc_guidance(concepts, disc, models.load(disc, weights.get(disc), device),
                                images, bestbuddies, matches)
    chosen = strongest_pairs(concepts, pairs, gan)
    if not chosen:
        raise UserError(f"no concept of {gan} has a partner in {disc}")
    side = real.shape[1]
    rows: dict[str, list[np.ndarray]] = {"concept": [], "target": [], f"{disc} map": []}
    rows |= {f"start {s + 1}": [] for s in range(starts)}
    for number, pair in chosen.items():
        d_map = maps[pair.target_layer][:, pair.target_channel]
        z_map = (d_map - pair.target_mean) / (pair.target_std or 1.0)
        best = int(z_map.mean(dim=(1, 2)).argmax())
        target = {pair.target_layer: maps[pair.target_layer][best:best + 1].expand(
            starts, -1, -1, -1)}
        z0 = spec.latent.sample(seed, range(NEURON_START + number * starts,
                                            NEURON_START + (number + 1) * starts)).to(device)
        z, _ = invert(forward, z0, [pair], target, replace(settings, similarity="distance"))
        with torch.no_grad():
            out = to_uint8(forward(z)[0])
        heat = torch.nn.functional.interpolate(z_map[best][None, None], size=(side, side),
                                               mode="bilinear", align_corners=False)[0, 0]
        layer = pair.target_layer.split("/", 1)[1]
        rows["concept"].append(label(f"concept {number}\n{pair.gan_layer}:{pair.gan_channel}"
                                      f"\n{layer}:{pair.target_channel}", 2 * side, 2 * side))
        rows["target"].append(real[best])
        rows[f"{disc} map"].append(heat_colours(heat.cpu().numpy()))
        for s in range(starts):
            rows[f"start {s + 1}"].append(out[s])
    panels = {t: grid(np.stack(v), cols=1, scale=1 if t == "concept" else 2)
              for t, v in rows.items()}
    return side_by_side(panels)


OOD_START = 2 * 10 ** 9  # latent indices of the starts, beyond any dictionary's images


def ood_sheet(gan: str, weights: Mapping[str, str], concepts_csv: str, discs: Sequence[str],
              bestbuddies: Sequence[str], matches: Sequence[str], targets: Sequence[Path],
              seed: int, settings: InversionSettings, device: torch.device | str = "cpu"
              ) -> Image.Image:
    """Invert each target by pixels and by the Rosetta maps of all `discs`; the sheet."""
    if not targets:
        raise UserError("no target images given")
    check_guidance_inputs(discs, bestbuddies, matches)
    spec, model = models.load(gan, weights.get(gan), device)
    forward = generator_forward(spec, model)
    z0 = spec.latent.sample(seed, range(OOD_START, OOD_START + len(targets))).to(device)
    with torch.no_grad():
        size = forward(z0[:1])[0].shape[-1]
    images = read_images(targets, size).to(device)
    concepts = read_concept_table(concepts_csv)
    pairs, maps = [], {}
    for found, found_maps in guidance_by_disc(concepts, discs, weights, bestbuddies, matches,
                                              images).values():
        pairs += found
        maps |= found_maps
    by_pixels, _ = invert(forward, z0, [], {}, replace(settings, act_weight=0.0, rec_weight=1.0),
                          images)
    by_rosetta, _ = invert(forward, z0, pairs, maps, replace(settings, similarity="distance"))
    with torch.no_grad():
        columns = {"target": to_uint8(images),
                   "by pixels (reconstruction)": to_uint8(forward(by_pixels)[0]),
                   f"by Rosetta maps ({len(pairs)} pairs)": to_uint8(forward(by_rosetta)[0])}
    return side_by_side({title: grid(im, cols=1) for title, im in columns.items()})
