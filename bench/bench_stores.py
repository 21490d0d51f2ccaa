"""Benchmark: writing and reading a correlation state's and a match store's matrices with
zarr's default codec (zstd) against the project's (`core.stores.MATRIX_CODECS`).

A match job writes float64 states of (G units x D units) per pair and shard, and `reduce`
reads them back: BigGAN-deep-256 against the paper's five Ds with 2 null permutations is
57 GiB a shard. Their low mantissa bytes are random, so no codec saves much; what a codec
costs is time. This script writes and reads the same rows (sums of products: full-entropy
float64; correlations: float32 in [-0.3, 0.3]) in the stores' own chunks and shard files
(`matrix_encoding`), with each codec, in one run, and prints MB/s, the ratio of the two and
each store's size on disk against the raw bytes.

    python bench/bench_stores.py [--rows 4096] [--cols 23296] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from rosetta_steps.core.stores import MATRIX_CODECS, matrix_encoding


def timed(matrix: np.ndarray, folder: Path, compressors) -> tuple[float, float, int]:
    """Seconds to write `matrix` into a new store, to read it back, and the store's bytes."""
    shutil.rmtree(folder, ignore_errors=True)
    encoding = matrix_encoding(*matrix.shape, matrix.itemsize)
    group = zarr.open_group(str(folder), mode="w", zarr_format=3)
    array = group.create_array("m", shape=matrix.shape, dtype=matrix.dtype,
                               chunks=encoding["chunks"], shards=encoding["shards"],
                               compressors=compressors)
    t0 = time.perf_counter()
    array[:] = matrix
    t1 = time.perf_counter()
    back = zarr.open_group(str(folder), mode="r")["m"][:]
    t2 = time.perf_counter()
    assert np.array_equal(back, matrix)
    return t1 - t0, t2 - t1, sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=23296, help="BigGAN-deep-256's units")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    matrices = {"state (float64)": rng.standard_normal((args.rows, args.cols)) * 1e3,
                "correlation (float32)": rng.uniform(-0.3, 0.3, (args.rows, args.cols))
                .astype(np.float32)}
    codecs = {"zstd (zarr's default)": "auto",
              "MATRIX_CODECS": MATRIX_CODECS}
    print(f"{args.rows} x {args.cols}, best of {args.repeat}")
    print(f"  {'':<24}{'':<24}{'write MB/s':>11}{'read MB/s':>11}{'size/raw':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for what, matrix in matrices.items():
            speeds = {}
            for label, compressors in codecs.items():
                runs = [timed(matrix, Path(tmp) / "m.zarr", compressors)
                        for _ in range(args.repeat)]
                write, read = min(r[0] for r in runs), min(r[1] for r in runs)
                mb = matrix.nbytes / 2**20
                speeds[label] = (mb / write, mb / read)
                print(f"  {what:<24}{label:<24}{mb / write:>11.0f}{mb / read:>11.0f}"
                      f"{runs[0][2] / matrix.nbytes:>10.3f}")
            (w0, r0), (w1, r1) = speeds.values()
            print(f"  {what:<24}{'MATRIX_CODECS / zstd':<24}{w1 / w0:>10.2f}x{r1 / r0:>10.2f}x")


if __name__ == "__main__":
    main()
