"""Benchmark: the streaming, resolution-folded accumulator against the original algorithm.

Both run on the same activations in one process: BigGAN-deep-like generator layers (4x4 ...
128x128) against ResNet-50-like layers (56, 28, 14, 7). The original algorithm, as in the
paper's code: a statistics pass, then per batch normalise, upsample every layer pair to the
larger size, take the cosine of the normalised maps, and average over batches. Its float64
means make it run in float64; it is also timed in float32, so that each precision of this
implementation has a like-for-like baseline. Activations are NCHW-contiguous, as the models
and the sample stores give them (`--channels-last` for the other layout). Exactness is
measured against a float64 two-pass reference of Eq. 2 (upsample, centre, correlate). Model
forward passes are excluded: the original needs two passes over the models, this
implementation one, so the real end-to-end ratio is larger.

    python bench/bench_correlation.py [--images 16] [--batch 8] [--width 1] [--device cpu]
                                      [--channels-last] [--no-reference]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rosetta_steps import CorrelationAccumulator

# (channels, size) of BigGAN-deep-256's generator blocks and ResNet-50's stages at 224 input.
GAN = {f"gen{i}": (c, s) for i, (c, s) in enumerate(
    [(2048, 4), (2048, 8), (1024, 16), (1024, 32), (512, 64), (256, 128)])}
DISC = {f"layer{i + 1}": (c, s) for i, (c, s) in enumerate([(256, 56), (512, 28), (1024, 14),
                                                             (2048, 7)])}


def make_batches(n: int, batch: int, width: int, seed: int = 0,
                 layout: torch.memory_format = torch.contiguous_format):
    """Activations that share structure: each unit is a ReLU of a mix of smooth random fields."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n // batch):
        fields = torch.randn(batch, 8, 16, 16, generator=gen)

        def side(layers, fields=fields):
            acts = {}
            for name, (c, s) in layers.items():
                c = max(1, c // width)
                base = F.interpolate(fields, size=(s, s), mode="bilinear", align_corners=False)
                mix = torch.randn(c, 8, generator=gen)
                x = torch.einsum("bfhw,cf->bchw", base, mix)
                x = torch.relu(x + 0.5 * torch.randn(x.shape, generator=gen) + 0.2)
                acts[name] = x.contiguous(memory_format=layout)
            return acts

        out.append((side(GAN), side(DISC)))
    return out


def upsampled(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def original(batches, device: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The original code's algorithm (match_utils/stats.py and matching.py of the paper's
    repository), rewritten: per-batch mean (float64) and std per unit, averaged over batches
    (mean of means, root mean square of stds); then per batch and per pair of layers,
    normalise both maps, upsample both to the larger size, take the cosine of the normalised
    maps (NaN -> 0), and average the per-batch tables. The original's float64 means promote
    the normalised maps, and so the whole matching, to float64; `dtype=torch.float32` casts
    the statistics down to time the same algorithm in float32."""
    per_batch: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for acts in (a for batch in batches for a in batch):
        for name, x in acts.items():
            x = x.to(device).transpose(0, 1).reshape(x.shape[1], -1)
            per_batch.setdefault(name, []).append((x.mean(1, dtype=torch.float64), x.std(1)))
    stats = {name: ((sum(m for m, _ in ms) / len(ms)).to(dtype).view(1, -1, 1, 1),
                    (sum(s**2 for _, s in ms) / len(ms)).sqrt().view(1, -1, 1, 1))
             for name, ms in per_batch.items()}

    def normalised(x: torch.Tensor, name: str, size: int) -> torch.Tensor:
        mean, std = stats[name]
        return F.interpolate((x.to(device) - mean) / (std + 1e-5), size=(size, size),
                             mode="bilinear", align_corners=False)

    total = None
    for g_acts, d_acts in batches:
        blocks = []
        for gname, g in g_acts.items():
            row = []
            for dname, d in d_acts.items():
                size = max(g.shape[-1], d.shape[-1])
                gn, dn = normalised(g, gname, size), normalised(d, dname, size)
                prod = torch.einsum("bixy,bjxy->ij", gn, dn)
                norms = torch.outer(torch.einsum("bixy->i", gn**2), torch.einsum("bjxy->j", dn**2))
                row.append(torch.nan_to_num(prod / norms.sqrt(), nan=0.0))
            blocks.append(torch.cat(row, dim=1))
        block = torch.cat(blocks).float()
        total = block if total is None else total + block
    return total / len(batches)


def reference(batches) -> torch.Tensor:
    """Float64 two-pass Eq. 2: upsample each layer pair, centre by the global mean, correlate."""
    def cat(side, name):
        return torch.cat([b[side][name] for b in batches]).to(torch.float64)

    rows = []
    for gname in batches[0][0]:
        row = []
        for dname in batches[0][1]:
            g, d = cat(0, gname), cat(1, dname)
            size = max(g.shape[-1], d.shape[-1])
            g, d = upsampled(g, size), upsampled(d, size)
            g = (g - g.mean((0, 2, 3), keepdim=True)).transpose(0, 1).reshape(g.shape[1], -1)
            d = (d - d.mean((0, 2, 3), keepdim=True)).transpose(0, 1).reshape(d.shape[1], -1)
            cov = g @ d.T
            row.append(cov / torch.outer(g.norm(dim=1), d.norm(dim=1)))
        rows.append(torch.cat(row, dim=1))
    return torch.cat(rows)


def cross_gflop(width: int, images: int) -> tuple[float, float]:
    """Multiply-adds x 2 of the cross products: at the larger size of each layer pair
    (original) and at the smaller (this implementation); projections not counted."""
    old = new = 0.0
    for cg, a in GAN.values():
        for cd, b in DISC.values():
            pairs = 2 * max(1, cg // width) * max(1, cd // width) * images
            old += pairs * max(a, b) ** 2
            new += pairs * min(a, b) ** 2
    return old / 1e9, new / 1e9


def timed(fn):
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=1,
                        help="divide the real channel counts by this (1 = real sizes)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last activations instead of NCHW-contiguous ones")
    parser.add_argument("--no-reference", action="store_true", help="skip the exactness check")
    args = parser.parse_args()
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    batches = make_batches(args.images, args.batch, args.width, layout=layout)
    n_g = sum(max(1, c // args.width) for c, _ in GAN.values())
    n_d = sum(max(1, c // args.width) for c, _ in DISC.values())
    print(f"{n_g} G units (4..128 px) x {n_d} D units (56..7 px), {args.images} images, "
          f"batch {args.batch}, device {args.device}")
    old_flop, new_flop = cross_gflop(args.width, args.images)
    print(f"cross-product GFLOP: original {old_flop:.0f}, this {new_flop:.0f} "
          f"(ratio {old_flop / new_flop:.1f})")

    def ours(dtype):
        acc = CorrelationAccumulator(device=args.device, dtype=dtype)
        for g, d in batches:
            acc.update(g, d)
        return acc.correlation()

    ours(torch.float64), original(batches[:1], args.device)  # warm-up: allocator, kernels
    runs = {}
    for who, fn in (("original", lambda dtype: original(batches, args.device, dtype)),
                    ("this", ours)):
        for dtype in (torch.float64, torch.float32):
            runs[who, dtype] = timed(lambda fn=fn, dtype=dtype: fn(dtype))
    ref = None if args.no_reference else reference(batches).to(args.device)  # float64 Eq. 2
    base = [runs["original", dtype][1] for dtype in (torch.float64, torch.float32)]
    print(f"{'':<20} {'time':>8}   speed-up vs original in float64 (as published) | float32")
    for (who, dtype), (corr, seconds) in runs.items():
        error = "" if ref is None else f"   max |error| {(corr.double() - ref).abs().max():.1e}"
        print(f"{who + ', ' + str(dtype)[6:]:<20} {seconds:6.2f} s   {base[0] / seconds:6.1f}x"
              f" | {base[1] / seconds:5.1f}x{error}")


if __name__ == "__main__":
    main()
