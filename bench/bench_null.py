"""Benchmark: what the null model adds to a match job (issue 18's cost goal: under 30% more
match time with 2 permutations).

Times, in one process and interleaved, the whole work of a match shard (the generator's and
D's forward passes, the correlation accumulator, writing the shard store) without a null and
with R null permutations, for the demo's pairs: the shapes GAN against each discriminative
model of the shapes zoo (random weights: the architectures, and so the time, are the
demo's), 128 images in batches of 32, as `make demo` mines them. Prints the median of the
repeats and the ratio; also the kernel-only ratio on the paper's BigGAN-deep x ResNet-50
layer sizes (`bench_correlation.make_batches`), where GEMMs dominate. The observed pairing is
accumulated in float64 (the match step's default), the null's products in float32.

    python bench/bench_null.py [--nulls 2] [--images 128] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_correlation import make_batches

from rosetta_steps import CorrelationAccumulator
from rosetta_steps.mining.matching import Pair, mine_shard

PAIRS = [("shapes-gan", d) for d in ("shapes-cnn-sup", "shapes-cnn-ssl", "shapes-vit-mae", None)]


def match_seconds(gan: str, disc: str | None, nulls: int, images: int, folder: Path) -> float:
    start = time.perf_counter()
    mine_shard(gan, [Pair(disc or gan, folder / f"{disc}-{nulls}.zarr")],
               {gan: "random", **({disc: "random"} if disc else {})}, seed=0, start=0,
               count=images, batch_size=32, device="cpu", nulls=nulls)
    return time.perf_counter() - start


def kernel_seconds(batches, nulls: int) -> float:
    start = time.perf_counter()
    acc = CorrelationAccumulator(device="cpu", nulls=nulls)  # float64, as the match step
    for g, d in batches:
        acc.update(g, d)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nulls", type=int, default=2)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"match shard of {args.images} images, batch 32, {args.threads} thread(s); "
          f"median of {args.repeats}")
    total = {0: 0.0, args.nulls: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for gan, disc in PAIRS:
            match_seconds(gan, disc, 0, 32, Path(tmp))  # warm-up: imports, allocator
            times = {0: [], args.nulls: []}
            for _ in range(args.repeats):
                for nulls in times:
                    times[nulls].append(match_seconds(gan, disc, nulls, args.images, Path(tmp)))
            base, null = (statistics.median(times[n]) for n in (0, args.nulls))
            total[0] += base
            total[args.nulls] += null
            print(f"{gan} x {disc or gan:<16} {base:6.2f} s -> {null:6.2f} s with "
                  f"{args.nulls} nulls ({null / base:.2f}x)")
    print(f"{'all pairs':<31} {total[0]:6.2f} s -> {total[args.nulls]:6.2f} s "
          f"({total[args.nulls] / total[0]:.2f}x)")
    batches = make_batches(8, 4, 1)
    kernel_seconds(batches[:1], 0)
    runs = {n: statistics.median(kernel_seconds(batches, n) for _ in range(args.repeats))
            for n in (0, args.nulls)}
    print(f"kernel only, BigGAN-deep-256 x ResNet-50 layers, 8 images, float64: "
          f"{runs[0]:.2f} s -> {runs[args.nulls]:.2f} s ({runs[args.nulls] / runs[0]:.2f}x)")


if __name__ == "__main__":
    main()
