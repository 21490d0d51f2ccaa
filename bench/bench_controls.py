"""Benchmark: what the controls (issue 36: untrained twins of each D and the pixel control)
add to the fused mining of the demo's dictionaries.

Times, in one process and interleaved, the fused match job of one shard (one forward pass of
G, or of the anchor over the data set's images, for all of a dictionary's pairs, with the
null's permutations, writing every shard store and the sample store) for each of the demo's
three dictionaries: with its Ds and G alone, and with the Ds, TWINS untrained twins of each
and the `pixels` control added, as `make demo` mines them. The shapes zoo runs at random
weights (the architectures, and so the time, are the demo's), the faces zoo at its packaged
weights, twins at fresh ones (re-estimating BatchNorm changes no time). Prints the median of
the repeats per dictionary, the ratio, and the total.

    python bench/bench_controls.py [--twins 2] [--images 128] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rosetta_steps.core.datasets import dataset
from rosetta_steps.mining.matching import Pair, mine_shard

SHAPES = ("shapes-cnn-sup", "shapes-cnn-ssl", "shapes-vit-mae")
# name: (G or anchor, Ds, data set, weights)
DICTIONARIES = {
    "shapes": ("shapes-gan", SHAPES, None, "random"),
    "shapes_real": ("shapes-cnn-sup", SHAPES[1:], {"world": "shapes"}, "random"),
    "faces": ("faces-dcgan", ("mtcnn-onet", "mtcnn-rnet", "fer-minixception"), None, None),
}


def mine_seconds(name: str, twins: int, images: int, nulls: int, folder: Path) -> float:
    gan, discs, declaration, weights = DICTIONARIES[name]
    partners = [*discs, *(f"twin{s}:{d}" for d in discs for s in range(1, twins + 1)),
                *(["pixels"] if twins else []), gan]
    shapes = {m: weights for m in (gan, *discs) if weights}
    data = dataset(declaration) if declaration else None
    out = folder / f"{name}-{twins}"
    start = time.perf_counter()
    mine_shard(gan, [Pair(p, out / f"{p}.zarr") for p in partners], shapes, seed=0, start=0,
               count=images, batch_size=32, device="cpu", nulls=nulls,
               subset="shapes-real" if data else "all", data=data, samples=out / "s.zarr")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--twins", type=int, default=2)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--nulls", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"fused match shard of {args.images} images, batch 32, {args.nulls} nulls, "
          f"{args.threads} thread(s); median of {args.repeats}")
    total = {0: 0.0, args.twins: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for name in DICTIONARIES:
            mine_seconds(name, args.twins, 32, args.nulls, Path(tmp))  # warm-up
            times = {0: [], args.twins: []}
            for _ in range(args.repeats):
                for twins in times:
                    times[twins].append(mine_seconds(name, twins, args.images, args.nulls,
                                                     Path(tmp)))
            base, controls = (statistics.median(times[t]) for t in (0, args.twins))
            total[0] += base
            total[args.twins] += controls
            print(f"{name:<12} {base:6.2f} s -> {controls:6.2f} s with {args.twins} twins of "
                  f"each D and pixels ({controls / base:.2f}x)")
    print(f"{'all three':<12} {total[0]:6.2f} s -> {total[args.twins]:6.2f} s "
          f"({total[args.twins] / total[0]:.2f}x)")


if __name__ == "__main__":
    main()
