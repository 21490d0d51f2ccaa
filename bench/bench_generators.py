"""Benchmark: shapes generators side by side, as the supervised judge and the edits see them
(issue 40's generator goals), with the world's real images as the last row.

For each weights file: the judge's share of samples with a shape found and their feature
diversity (`training.evaluate.judge_generator`, the train step's figures), objects per image
as the edits count them (connected regions of object colour, `inversion.editing`), the share
of samples whose likeliest shape the judge gives above 0.9 ("confident"), and the three
labels whose generated / real frequency is furthest from 1 (the goal: within a factor 1.5).
All on the same held-out latents and images.

    python bench/bench_generators.py --judge data/zoo/shapes/shapes-cnn-sup.safetensors \
        data/zoo/shapes/shapes-gan.safetensors [more.safetensors ...] [--images 1024]
"""

from __future__ import annotations

import argparse
import math

import torch

from rosetta_steps import models
from rosetta_steps.core import world
from rosetta_steps.core.images import to_uint8
from rosetta_steps.inversion.editing import object_geometry
from rosetta_steps.training import data
from rosetta_steps.training.evaluate import batched, judge_generator

CONFIDENT = 0.9


def _row(name: str, images: torch.Tensor, judge: torch.nn.Module, found: float,
         diversity: float, ratio: dict[str, float] | None) -> str:
    shapes = batched(judge, images)[:, :len(world.SHAPES)].sigmoid()
    confident = (shapes.max(1).values > CONFIDENT).float().mean().item()
    objects = object_geometry(to_uint8(images)).count.mean()
    worst = sorted(ratio or {}, key=lambda k: -abs(math.log(ratio[k])))[:3]
    furthest = ", ".join(f"{k} {ratio[k]:.2f}" for k in worst) or "-"
    return (f"| {name} | {found:.3f} | {diversity:.1f} | {objects:.2f} | {confident:.2f} "
            f"| {furthest} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="shapes-gan weights files")
    parser.add_argument("--judge", required=True, help="shapes-cnn-sup weights")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    _, judge = models.load("shapes-cnn-sup", args.judge)
    judge.eval()
    spec = models.get("shapes-gan")
    real, _ = data.held_out(args.images, args.seed)
    z = spec.latent.sample(args.seed, range(world.HELD_OUT_START,
                                            world.HELD_OUT_START + args.images))
    print("| generator | shape found | diversity | objects / image | confident "
          "| generated / real, furthest from 1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in args.weights:
        _, gan = models.load("shapes-gan", path)
        judged = judge_generator(gan, judge, real, z)
        freq = judged["label_frequency"]
        ratio = {k: freq["generated"][k] / freq["real"][k] for k in freq["real"]}
        print(_row(path, batched(gan, z), judge, judged["shapes_found_generated"],
                   judged["diversity_generated"], ratio), flush=True)
    print(_row("real images", real, judge, judged["shapes_found_real"],
               judged["diversity_real"], None))


if __name__ == "__main__":
    main()
