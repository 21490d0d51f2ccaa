"""Benchmark: reading a folder data set (issue 19), serial against threaded decoding.

Writes `--images` JPEGs of 500 x 375 pixels (ImageNet's typical size) to a temporary folder,
then times in one process, on the same files: `FolderDataset.read` with one thread and with
`--threads` threads (Pillow releases the GIL while it decodes and resizes), and the sample
step's whole loop (`mining.sampling.sample_shard`: threaded reads of the next batch while the
anchor runs, the pixels and the anchor's unit means kept) with the shapes zoo's contrastive
CNN at random weights as the anchor. Prints milliseconds per image and the ratio.

    python bench/bench_datasets.py [--images 96] [--size 518] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rosetta_steps.core.datasets import FolderDataset
from rosetta_steps.mining.sampling import sample_shard


def write_jpegs(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 180, 500)[None, :, None]
    for i in range(n):
        pixels = (rng.random((375, 500, 3)) * 60 + ramp).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.JPEG", quality=90)


def per_image_ms(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=518)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.images)
        data = FolderDataset(Path(tmp), size=args.size)
        data.read(range(min(4, args.images)))  # file list and page cache warm
        n, ids = args.images, range(args.images)
        serial = per_image_ms(lambda: data.read(ids, workers=1), n)
        threaded = per_image_ms(lambda: data.read(ids, workers=args.threads), n)
        def sample(count: int) -> None:
            sample_shard("shapes-cnn-ssl", "random", "bench", 0, 0, count, args.batch, data=data)

        sample(min(n, args.batch))  # the model's first load and first passes
        step = per_image_ms(lambda: sample(n), n)
    print(f"{n} JPEGs 500 x 375 -> {args.size} px, {args.threads} thread(s)")
    print(f"  read, 1 thread        {serial:6.1f} ms/image")
    print(f"  read, {args.threads} threads       {threaded:6.1f} ms/image  "
          f"({serial / threaded:.2f}x faster)")
    print(f"  sample step (all)     {step:6.1f} ms/image  (1-thread read alone: {serial:.1f})")


if __name__ == "__main__":
    main()
