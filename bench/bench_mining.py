"""Benchmark: mining a dictionary against its physical limit (issue 21).

The limit of mining a dictionary's images is one forward pass of G and of each D per image
plus the correlation kernel (Eq. 1-2) of every pair. This script times, in one process
and on the same images:

- `forward`: the models' bare forward passes (G once, each D once per image);
- `kernel`: every pair's accumulator (G against each D and against itself) fed the maps of
  those passes, kept in memory, in the row blocks the memory budget allows;
- `per pair`: the pipeline as a job per pair and shard (`match: per_pair`): the sample store,
  then each pair's shard store, each job running G again;
- `fused`: the pipeline as one fused job per shard (`match: fused`): every pair's shard store
  and the sample store from one pass of G per block-pass (`mining.matching.mine_shard`);
- `reduce`: each pair's shards merged into its match store and null stores;
- `match job`, `reduce job`: the fused match step (of the first shard) and the reduce step (of
  the largest pair) run as their own processes with `--mem-mb`, for their whole peak resident
  memory against that budget (what a scheduler reserves and a cluster enforces).

The images are mined in shards of `--shard-size` (params.yaml's shard_size, 128), as the
workflow mines them: the shapes zoo's 512 are its dictionary's (params.yaml), four shards.

Each setting runs `--repeat` rounds (the shapes zoo, 3 by default: its parts take seconds,
which a shared machine's load can double) or `--biggan-repeat` (1), and each part's fastest
round is reported. It prints seconds, each pipeline's ratio to the limit (forward + kernel)
and the peak resident memory above the start of each section (sampled every 5 ms from /proc;
on CUDA, `torch.cuda.max_memory_allocated`); for the jobs, their processes' peak (`wait4`;
host memory only, also on CUDA). Two settings: the shapes zoo at the demo's size (the shapes
dictionary's 512 images, random weights: the architectures, and so the time, are the demo's),
and BigGAN-deep-256 (random weights, class briard) against ResNet-50 and ViT-B/16 at a few
images on CPU, where G x G (23296 units) and G x ViT (36864 units) states exceed any budget a
workstation has and go in row blocks. On a GPU, pass --device cuda and the paper's sizes.
`--chunks` also times G's whole state against itself with D's side whole and in chunks
(`CorrelationAccumulator(chunk=)`), ratios to D whole.

    python bench/bench_mining.py [--images 512] [--biggan-images 4] [--shard-size 128]
                                 [--mem-mb 16000] [--repeat 3] [--biggan-repeat 1]
                                 [--batch 32] [--biggan-batch 2] [--nulls 2] [--biggan-nulls 0]
                                 [--device cpu] [--threads 2]
                                 [--only shapes|biggan] [--no-jobs] [--chunks 512 2048]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from rosetta_steps import models
from rosetta_steps.core.devices import forward_precision
from rosetta_steps.core.units import unit_count
from rosetta_steps.mining.blocks import block_maps
from rosetta_steps.mining.budget import fit_passes, model_bytes
from rosetta_steps.mining.buffers import Buffers
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.matching import Pair, mine_shard
from rosetta_steps.mining.reduction import reduce_pair
from rosetta_steps.mining.sampling import sample_shard, subset_class, write_samples

SETTINGS = {
    "shapes": ("shapes-gan", "all", ["shapes-cnn-sup", "shapes-cnn-ssl", "shapes-vit-mae"]),
    "biggan": ("biggan-deep-256", "briard", ["resnet50", "dino_vitb16"]),
}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def measured(device: torch.device, out: dict):
    """Seconds and peak memory above the start (bytes) of the block, into `out`."""
    start_rss, peak, stop = _rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss())

    thread = threading.Thread(target=sample, daemon=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    thread.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize()
        out["seconds"] = time.perf_counter() - t0
        stop.set()
        thread.join()
        out["peak"] = (torch.cuda.max_memory_allocated() - base if device.type == "cuda"
                       else max(peak[0], _rss(), start_rss) - start_rss)


@torch.no_grad()
def forward_and_kernel(gan: str, subset: str, discs: list[str], images: int, batch: int,
                       nulls: int, mem_mb: float, device: torch.device, autocast: str,
                       chunks: list[int]) -> tuple[dict, dict, dict]:
    """The limit: bare forward passes (maps kept), then the kernel over the kept maps, in
    the row blocks the fused job plans for `mem_mb`; with `chunks`, G's whole state against
    itself with D's side whole and in chunks of those sizes (`self_chunks`)."""
    weights = "random"
    g_spec, g_model = models.load(gan, weights, device)
    cls = subset_class(g_spec, subset)
    loaded = {d: models.load(d, weights, device) for d in discs}
    batches, forward, kernel = [], {}, {}
    with measured(device, forward):
        for lo in range(0, images, batch):
            z = g_spec.latent.sample(0, range(lo, min(lo + batch, images))).to(device)
            y = None if cls is None else torch.full((len(z),), cls, device=device)
            with forward_precision(device, autocast):
                pictures, g_maps = g_spec.run(g_model, z, y)
                d_maps = {d: s.run(m, s.preprocess(pictures.float()))[1]
                          for d, (s, m) in loaded.items()}
            batches.append((g_maps, d_maps))
    g_layers = g_spec.layer_specs()
    partners = [*discs, gan]
    specs = [models.get(p).layer_specs() for p in partners]
    weights_bytes = model_bytes(g_model) + sum(model_bytes(m) for _, m in loaded.values())
    passes, chunk = fit_passes(mem_mb, g_layers, specs[:-1], specs, weights_bytes,
                               min(batch, images), nulls)
    with measured(device, kernel):
        for planned in passes:
            scratch = Buffers(device)
            accs = [CorrelationAccumulator(device, nulls=nulls, scratch=scratch, chunk=chunk)
                    for _ in planned]
            for g_maps, d_maps in batches:
                for (i, lo, hi), acc in zip(planned, accs, strict=True):
                    other = g_maps if partners[i] == gan else d_maps[partners[i]]
                    acc.update(block_maps(g_maps, g_layers, lo, hi), other)
            acc = accs = None
    return forward, kernel, self_chunks([g for g, _ in batches], nulls, device, chunks)


def self_chunks(batches: list[dict], nulls: int, device: torch.device, chunks: list[int]
                ) -> dict:
    """Seconds and peak memory of G's whole state against itself over the kept maps, D's
    side whole (None) and `chunks` units at a time."""
    out = {}
    for chunk in [None, *chunks] if chunks else []:
        out[chunk] = {}
        with measured(device, out[chunk]):
            acc = CorrelationAccumulator(device, nulls=nulls, chunk=chunk)
            for g_maps in batches:
                acc.update(g_maps, g_maps)
            acc = None
    return out


# Runs a command and prints its peak resident KiB. The job must be started from a small
# process: a child's ru_maxrss starts at the peak of the process it was spawned from.
WAITER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
          "_, status, usage = os.wait4(p.pid, 0); print(usage.ru_maxrss); "
          "sys.exit(os.waitstatus_to_exitcode(status))")


def job_peak(step: str, args: list[str], out: dict) -> None:
    """Seconds and peak resident bytes of `python -m rosetta_steps.<step> args` run as its
    own process, into `out`; its last line on failure."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WAITER, sys.executable, "-m",
                           f"rosetta_steps.{step}", *args], capture_output=True, text=True)
    out["seconds"] = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{step} failed: {done.stderr.strip().splitlines()[-1]}")
    out["peak"] = int(done.stdout.split()[-1]) * 1024  # KiB on Linux


def pipelines(gan: str, subset: str, discs: list[str], images: int, shard: int, batch: int,
              nulls: int, mem_mb: float, device: torch.device, autocast: str, folder: Path,
              per_pair: bool, jobs: bool) -> dict[str, dict]:
    weights = {m: "random" for m in (gan, *discs)}
    args = dict(weights=weights, seed=0, batch_size=batch, device=device, subset=subset,
                nulls=nulls, mem_mb=mem_mb, autocast=autocast)
    starts = range(0, images, shard)
    count = {lo: min(shard, images - lo) for lo in starts}
    partners = [*discs, gan]
    out = {name: {} for name in (["per pair"] if per_pair else []) + ["fused", "reduce"]}
    if per_pair:
        with measured(device, out["per pair"]):
            for lo in starts:
                write_samples(sample_shard(gan, "random", subset, 0, lo, count[lo], batch,
                                           device=device), folder / f"pp-samples-{lo}.zarr")
                for p in partners:
                    mine_shard(gan, [Pair(p, folder / f"pp-{p}-{lo}.zarr")], start=lo,
                               count=count[lo], **args)
    with measured(device, out["fused"]):
        for lo in starts:
            mined = mine_shard(gan, [Pair(p, folder / f"{p}-{lo}.zarr") for p in partners],
                               samples=folder / f"samples-{lo}.zarr", start=lo, count=count[lo],
                               **args)
    out["fused"]["passes"], out["fused"]["one pass"] = mined
    with measured(device, out["reduce"]):
        for p in partners:
            reduce_pair([folder / f"{p}-{lo}.zarr" for lo in starts], folder / f"{p}-matches.zarr",
                        [folder / f"{p}-null-{r}.zarr" for r in range(1, nulls + 1)],
                        images=images, device=device, mem_mb=mem_mb)
    if jobs:
        common = ["--device", str(device), "--mem-mb", str(mem_mb),
                  "--threads", str(torch.get_num_threads())]
        match_args = ["--gan", gan, "--subset", subset, "--count", str(count[0]),
                      "--batch-size", str(batch), "--null", str(nulls), "--autocast", autocast,
                      "--samples", str(folder / "job-samples.zarr"), *common]
        for p in partners:
            match_args += ["--disc", p, "--out", str(folder / f"job-{p}.zarr"),
                           "--weights", f"{p}=random"]
        out["match job"], out["reduce job"] = {}, {}
        job_peak("match", match_args, out["match job"])
        biggest = max(partners, key=lambda p: unit_count(models.get(p).layer_specs()))
        job_peak("reduce", [*(str(folder / f"{biggest}-{lo}.zarr") for lo in starts),
                            "--images", str(images),
                            "--out", str(folder / "job-matches.zarr"), *common,
                            *(["--null-out"] if nulls else []),
                            *(str(folder / f"job-null-{r}.zarr") for r in range(1, nulls + 1))],
                 out["reduce job"])
    return out


def best(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Each part's fastest round (with that round's peak): the machine's other load only
    ever adds time, so the least is the closest to the part's own cost."""
    parts = dict.fromkeys(key for r in rounds for key in r)
    return {key: min((r[key] for r in rounds if key in r), key=lambda m: m["seconds"])
            for key in parts}


def report(name: str, images: int, shard: int, rounds: list[dict[str, dict]], chunked: dict,
           mem_mb: float) -> None:
    runs = best(rounds)
    forward, kernel = runs.pop("forward"), runs.pop("kernel")
    bound = forward["seconds"] + kernel["seconds"]
    gb = 2**30
    best_of = f", the best of {len(rounds)} rounds" if len(rounds) > 1 else ""
    shards = -(-images // shard)
    print(f"\n{name}: {images} images in {shards} shard(s), mem_mb {mem_mb:g}{best_of}")
    print(f"  {'':<26}{'seconds':>9}{'x limit':>9}{'peak GB':>9}")
    rows = [("forward (G once, D once)", forward), ("kernel (cached maps)", kernel)]
    for label, r in rows:
        print(f"  {label:<26}{r['seconds']:>9.1f}{'':>9}{r['peak'] / gb:>9.2f}")
    print(f"  {'limit: forward + kernel':<26}{bound:>9.1f}{1:>9.2f}")
    for label, r in runs.items():
        extra = (f"  ({r['passes']} pass(es) of G a shard; one at mem_mb {r['one pass']:,.0f})"
                 if "passes" in r else "")
        if label.endswith("job"):
            extra = f"  whole process: {r['peak'] / 2**20 / mem_mb:.0%} of mem_mb"
        print(f"  {label:<26}{r['seconds']:>9.1f}{r['seconds'] / bound:>9.2f}"
              f"{r['peak'] / gb:>9.2f}{extra}")
    if "per pair" in runs:
        print(f"  fused is {runs['per pair']['seconds'] / runs['fused']['seconds']:.2f}x "
              "faster than a job per pair")
    whole = runs["fused"]["seconds"] + runs["reduce"]["seconds"]
    print(f"  mining (fused + reduce) / limit: {whole / bound:.2f}")
    for chunk, r in chunked.items():
        label = f"G x G, D {'whole' if chunk is None else f'in chunks of {chunk}'}"
        print(f"  {label:<26}{r['seconds']:>9.1f}{r['seconds'] / chunked[None]['seconds']:>9.2f}"
              f"{r['peak'] / gb:>9.2f}  (x D whole)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512,
                        help="shapes zoo images (512: the shapes dictionary's)")
    parser.add_argument("--biggan-images", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=128,
                        help="images a match job mines (params.yaml's shard_size, 128)")
    parser.add_argument("--batch", type=int, default=32, help="shapes zoo batch (32)")
    parser.add_argument("--biggan-batch", type=int, default=2,
                        help="BigGAN's batch (2: params.yaml's models.biggan-deep-256.batch_size)")
    parser.add_argument("--nulls", type=int, default=2, help="null permutations (shapes)")
    parser.add_argument("--biggan-nulls", type=int, default=0,
                        help="null permutations for BigGAN (each adds a state as large)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the shapes zoo, each part's best reported (3)")
    parser.add_argument("--biggan-repeat", type=int, default=1, help="rounds of BigGAN (1)")
    parser.add_argument("--mem-mb", type=float, default=16000,
                        help="each job's memory (params.yaml's mem_mb; 16000)")
    parser.add_argument("--no-jobs", action="store_true",
                        help="skip the match and reduce steps run as their own processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=sorted(SETTINGS), help="one setting alone")
    parser.add_argument("--chunks", type=int, nargs="*", default=[],
                        help="also time G's whole state against itself with D's side in "
                             "chunks of these many units, against D whole")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{args.device}, {args.threads} thread(s), autocast {args.autocast}")
    runs = [("shapes", args.images, args.batch, args.nulls, True, args.repeat),
            ("biggan", args.biggan_images, args.biggan_batch, args.biggan_nulls, False,
             args.biggan_repeat)]
    runs = [r for r in runs if args.only in (None, r[0])]
    for name, images, batch, nulls, per_pair, repeat in runs:
        gan, subset, discs = SETTINGS[name]
        label = f"{gan} x {', '.join(discs)} and itself"
        rounds, chunked = [], {}
        with tempfile.TemporaryDirectory() as tmp:
            if name == "shapes":  # warm-up: imports, allocator (BigGAN's would take minutes)
                pipelines(gan, subset, discs, batch, batch, batch, nulls, args.mem_mb,
                          device, args.autocast, Path(tmp), False, False)
            for r in range(repeat):  # each round writes a folder of its own
                forward, kernel, timed = forward_and_kernel(
                    gan, subset, discs, images, batch, nulls, args.mem_mb, device,
                    args.autocast, args.chunks if r == 0 else [])
                chunked = chunked or timed
                folder = Path(tmp) / f"round-{r}"
                folder.mkdir()
                rounds.append({"forward": forward, "kernel": kernel, **pipelines(
                    gan, subset, discs, images, args.shard_size, batch, nulls, args.mem_mb,
                    device, args.autocast, folder, per_pair,
                    not args.no_jobs and r == repeat - 1)})
        report(f"{label}, {nulls} null permutation(s)", images, args.shard_size, rounds,
               chunked, args.mem_mb)


if __name__ == "__main__":
    main()
