"""`python -m rosetta_steps.match`: one shard of unit matching for a (G, D) pair (Eq. 1-2).

For images start .. start+count-1 of a seed and subset, the generator makes each image from its
latent (latent i depends only on the seed and i), its hooked layers give the G maps, the
discriminative model sees the image through its own preprocessing and gives the D maps, and
the correlation accumulator takes both. The shard's state (float64 sums) is written to Zarr;
`reduce` merges shards into the pair's match store. Without --disc the generator is matched
against itself, which the Rosetta step needs for BB(G, G).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from . import models
from .cli import UserError, run
from .correlation import CorrelationAccumulator
from .devices import resolve_device, set_threads
from .sample import ALL, add_shard_options, generated_batches, subset_class
from .stores import save_accumulator


@torch.no_grad()
def match_models(gan: tuple[models.ModelSpec, torch.nn.Module],
                 disc: tuple[models.ModelSpec, torch.nn.Module] | None, seed: int,
                 indices: range, batch_size: int, truncation: float | None = None,
                 device: torch.device | str = "cpu", class_index: int | None = None
                 ) -> CorrelationAccumulator:
    """Statistics of loaded (spec, model) pairs over the images `indices` of a seed."""
    acc = CorrelationAccumulator(device=device)
    name = f"{gan[0].name} x {disc[0].name if disc else gan[0].name}"
    for _, _, images, g_maps in generated_batches(gan, seed, indices, batch_size, truncation,
                                                  class_index, device, desc=name):
        if disc is None:
            acc.update(g_maps, g_maps)
        else:
            d_spec, d_model = disc
            acc.update(g_maps, d_spec.run(d_model, d_spec.preprocess(images))[1])
    return acc


def match_shard(gan: str, gan_weights: str | Path | None, disc: str | None,
                disc_weights: str | Path | None, seed: int, start: int, count: int,
                batch_size: int, truncation: float | None = None, device: str = "cpu",
                subset: str = ALL) -> CorrelationAccumulator:
    """The correlation statistics of images start .. start+count-1 for one (G, D) pair."""
    if count < 1 or batch_size < 1 or start < 0:
        raise UserError(f"need count >= 1, batch size >= 1 and start >= 0; got count {count}, "
                        f"batch size {batch_size}, start {start}")
    dev = resolve_device(device)
    if models.get(gan).kind != models.GENERATOR:
        raise UserError(f"{gan} is {models.get(gan).kind}, not a generator")
    if disc and models.get(disc).kind != models.DISCRIMINATIVE:
        raise UserError(f"{disc} is a {models.get(disc).kind}; match a generator against a "
                        "discriminative model")
    cls = subset_class(models.get(gan), subset)  # before any weights load
    g = models.load(gan, gan_weights, dev)
    d = models.load(disc, disc_weights, dev) if disc else None
    return match_models(g, d, seed, range(start, start + count), batch_size, truncation, dev,
                        cls)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.match", description=__doc__)
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--gan-weights", type=Path, help="generator weights file")
    parser.add_argument("--disc", help="discriminative model name (omit for G against G)")
    parser.add_argument("--disc-weights", type=Path, help="discriminative model weights file")
    add_shard_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="shard state to write (Zarr)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    acc = match_shard(args.gan, args.gan_weights, args.disc, args.disc_weights, args.seed,
                      args.start, args.count, args.batch_size, args.truncation, args.device,
                      args.subset)
    save_accumulator(acc, args.out, gan=args.gan, disc=args.disc or args.gan,
                     subset=args.subset, seed=str(args.seed), start=str(args.start),
                     count=str(args.count))


if __name__ == "__main__":
    raise SystemExit(run(main))
