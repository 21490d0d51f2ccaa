"""`python -m rosetta_steps.neurons`: single Rosetta neurons visualised by inversion (Sec. 4.1).

For each concept, its strongest pair with one discriminative model D (the G unit and the D
unit of highest correlation): the held-out real image where the D unit is most active among
`candidates`, and the D unit's map of it. G is then inverted against that one map (Eq. 6 for
one pair, in its distance form, see `inversion`) from several random starts. What the
results share is what the neuron stands for; what differs is free (Fig. 1's right columns:
"red colour" rather than "hat").
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import models, shapes
from .cli import UserError, parse_weights, run
from .devices import add_device_options, resolve_device, set_threads
from .heatmaps import Z_RANGE, turbo
from .inversion import (
    Pair,
    Settings,
    add_optimiser_options,
    disc_guidance,
    generator_forward,
    invert,
    settings_from,
)
from .rosetta import read_concept_table
from .sample import to_uint8
from .samplesheet import grid, side_by_side
from .stores import atomic_output
from .training.data import HELD_OUT_START

START = 3 * 10 ** 9  # latent indices of the random starts, beyond any dictionary's images


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


def _label(text: str, width: int, height: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).multiline_text((4, 4), text, fill="black")
    return np.asarray(image)


def neuron_sheet(gan: str, weights: Mapping[str, str], concepts_csv: str, disc: str,
                 bestbuddies: str, matches: str, starts: int, candidates: int, seed: int,
                 settings: Settings, device: str = "cpu") -> Image.Image:
    """One row per concept: label, target, D map, and `starts` inversions."""
    if starts < 1 or candidates < 1:
        raise UserError(f"need at least one start and one candidate, got {starts}, "
                        f"{candidates}")
    dev = resolve_device(device)
    spec, model = models.load(gan, weights.get(gan), dev)
    forward = generator_forward(spec, model)
    real = shapes.render(candidates, seed, start=HELD_OUT_START).images
    images = torch.from_numpy(real).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(dev)
    concepts = read_concept_table(concepts_csv)
    pairs, maps = disc_guidance(concepts, disc, models.load(disc, weights.get(disc), dev),
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
        z0 = spec.latent.sample(seed, range(START + number * starts,
                                            START + (number + 1) * starts)).to(dev)
        z, _ = invert(forward, z0, [pair], target, replace(settings, similarity="distance"))
        with torch.no_grad():
            out = to_uint8(forward(z)[0])
        heat = torch.nn.functional.interpolate(z_map[best][None, None], size=(side, side),
                                               mode="bilinear", align_corners=False)[0, 0]
        lo, hi = Z_RANGE
        layer = pair.target_layer.split("/", 1)[1]
        rows["concept"].append(_label(f"concept {number}\n{pair.gan_layer}:{pair.gan_channel}"
                                      f"\n{layer}:{pair.target_channel}", 2 * side, 2 * side))
        rows["target"].append(real[best])
        rows[f"{disc} map"].append(turbo(((heat.cpu().numpy()) - lo) / (hi - lo)))
        for s in range(starts):
            rows[f"start {s + 1}"].append(out[s])
    panels = {t: grid(np.stack(v), cols=1, scale=1 if t == "concept" else 2)
              for t, v in rows.items()}
    return side_by_side(panels)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.neurons",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--disc", required=True, help="the discriminative model shown")
    parser.add_argument("--weights", action="append", help="NAME=PATH, once per model")
    parser.add_argument("--concepts", required=True, help="the rosetta step's concept table")
    parser.add_argument("--bestbuddies", required=True, help="the D's best-buddy table")
    parser.add_argument("--matches", required=True, help="the D's match store")
    parser.add_argument("--starts", type=int, default=3, help="random starts per neuron")
    parser.add_argument("--candidates", type=int, default=64,
                        help="held-out images to pick each neuron's target from")
    add_optimiser_options(parser)
    add_device_options(parser)
    parser.add_argument("--sheet", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = settings_from(args)
    sheet = neuron_sheet(args.gan, parse_weights(args.weights), args.concepts, args.disc,
                         args.bestbuddies, args.matches, args.starts, args.candidates,
                         args.seed, settings, args.device)
    with atomic_output(args.sheet) as tmp:
        sheet.save(tmp, format="PNG")


if __name__ == "__main__":
    raise SystemExit(run(main))
