"""Calibration and power of `q_learned` on real networks (issue 36): mines N untrained twins
of one D against G (twin seeds 101 .. 100 + N, away from the workflow's 1 .. S), then takes
each in turn as "D" and two others as its twins, and prints the share of its best-buddy
pairs at p_learned <= 0.05 and at q_learned <= 0.05. Every "D" is untrained, so a
calibrated test passes about none of its pairs at q <= 0.05. Then the trained D itself
(its weights from --weights, or its packaged ones), mined on the same images, against 2, 4,
... N of the twins: how the test's power grows with the twins.

    python bench/calibrate_controls.py --gan shapes-gan \
        --weights shapes-gan=results/zoo/shapes/shapes-gan.safetensors --disc shapes-cnn-sup
    python bench/calibrate_controls.py --gan faces-dcgan --disc mtcnn-onet --images 512
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from rosetta_steps.core.options import parse_weights
from rosetta_steps.mining.buddies import best_buddy_table
from rosetta_steps.mining.controls import Best, control_tables
from rosetta_steps.mining.matching import Pair, mine_shard
from rosetta_steps.mining.reduction import reduce_pair
from rosetta_steps.mining.twinning import make_twin

SHARD = 128


def mine_twins(gan: str, weights: dict, disc: str, count: int, images: int,
               folder: Path) -> list[str]:
    """The match stores of twins 101 .. 100 + count of `disc` against `gan`, and last of
    `disc` itself."""
    networks = [f"twin{100 + s}:{disc}" for s in range(1, count + 1)]
    for t in networks:
        weights[t] = str(folder / f"{t}.safetensors")
        make_twin(gan, t, weights, 0, 0, min(256, images), 32, weights[t])
    networks.append(disc)
    for lo in range(0, images, SHARD):
        mine_shard(gan, [Pair(n, folder / n / f"{lo}.zarr") for n in networks], weights, 0,
                   lo, min(SHARD, images - lo), 32)
    for n in networks:
        reduce_pair([folder / n / f"{lo}.zarr" for lo in range(0, images, SHARD)],
                    folder / n / "matches.zarr", images=images)
    return [str(folder / n / "matches.zarr") for n in networks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", default="shapes-gan")
    parser.add_argument("--weights", action="append", metavar="NAME=PATH")
    parser.add_argument("--disc", default="shapes-cnn-sup")
    parser.add_argument("--networks", type=int, default=6, help="untrained networks (6)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        *stores, trained = mine_twins(args.gan, parse_weights(args.weights), args.disc,
                                      args.networks, args.images, Path(tmp))
        best = [Best(s) for s in stores]
        tables = [best_buddy_table(s, args.k) for s in stores]
        print(f"{args.gan} x untrained {args.disc}, {args.images} images, K={args.k}: each "
              "network as D against the next two as its twins")
        for i, name in enumerate(stores):
            twins = [(i + 1) % len(stores), (i + 2) % len(stores)]
            pairs, _ = control_tables(tables[i], best[i], [best[j] for j in twins],
                                      [tables[j] for j in twins])
            print(f"  {Path(name).parent.name:<28} {len(pairs):4d} pairs: "
                  f"{(pairs['p_learned'] <= 0.05).mean():6.1%} at p <= 0.05, "
                  f"{(pairs['q_learned'] <= 0.05).mean():6.1%} at q_learned <= 0.05")
        print(f"trained {args.disc} against its first S twins:")
        table = best_buddy_table(trained, args.k)
        for twins in range(2, len(stores) + 1, 2):
            pairs, _ = control_tables(table, Best(trained), best[:twins], tables[:twins])
            print(f"  S = {twins}: {len(pairs):4d} pairs: "
                  f"{(pairs['p_learned'] <= 0.05).mean():6.1%} at p <= 0.05, "
                  f"{(pairs['q_learned'] <= 0.05).mean():6.1%} at q_learned <= 0.05")


if __name__ == "__main__":
    main()
