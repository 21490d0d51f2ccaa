"""`python -m rosetta_steps.sample`: one shard of generated images, kept for the pages to show.

Image i of a (generator, subset, seed) comes from the latent that depends only on (seed, i)
(`Latent.sample`), so shards of any size line up with the match shards and raising the image
count only adds shards. A subset is `all` for an unconditional generator or a class name
(e.g. `briard`) for a class-conditional one. The store keeps, per image: the latent, the class,
the uint8 pixels and the spatial mean of every G unit's map, so a page can rank images by a
concept's activation without running the generator again.

    python -m rosetta_steps.sample --gan shapes-gan --weights W.safetensors --subset all \
        --seed 0 --start 0 --count 256 --out results/samples/shapes-gan/all/00000-00256.zarr
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from . import models
from .cli import UserError, run
from .correlation import LayerSpec
from .devices import add_device_options, resolve_device, set_threads
from .stores import unit_coords, write_dataset

ALL = "all"


def subset_class(spec: models.ModelSpec, subset: str) -> int | None:
    """The class index a subset names, or None for `all` of an unconditional generator."""
    conditional = spec.latent.num_classes > 0
    if subset == ALL:
        if conditional:
            raise UserError(f"{spec.name} is class-conditional: name a class as the subset "
                            "(e.g. briard), not 'all'")
        return None
    if not conditional:
        raise UserError(f"{spec.name} is unconditional: its only subset is 'all', not {subset!r}")
    return spec.class_index(subset)


def generated_batches(gan: tuple[models.ModelSpec, torch.nn.Module], seed: int, indices: range,
                      batch_size: int, truncation: float | None = None,
                      class_index: int | None = None, device: torch.device | str = "cpu",
                      desc: str | None = None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, dict]]:
    """(latents, classes, images in [-1, 1], G maps) batch by batch over `indices`."""
    spec, model = gan
    for lo in tqdm(indices[::batch_size], desc=desc or spec.name, unit="batch",
                   mininterval=1.0):
        z = spec.latent.sample(seed, range(lo, min(lo + batch_size, indices.stop)),
                               truncation).to(device)
        y = None if class_index is None else torch.full((len(z),), class_index,
                                                        dtype=torch.long, device=device)
        images, maps = spec.run(model, z, y, truncation)
        yield z, y, images, maps


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] [n, 3, h, w] -> uint8 [n, h, w, 3]."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_images(gan: tuple[models.ModelSpec, torch.nn.Module], subset: str, seed: int,
                  indices: range, batch_size: int, truncation: float | None = None,
                  device: torch.device | str = "cpu") -> xr.Dataset:
    """The sample dataset of images `indices` (see the module docstring)."""
    spec = gan[0]
    cls = subset_class(spec, subset)
    latents, images, activations = [], [], []
    specs = None
    for z, _, batch, maps in generated_batches(gan, seed, indices, batch_size, truncation, cls,
                                               device, desc=f"sample {spec.name}/{subset}"):
        latents.append(z.cpu().numpy())
        images.append(to_uint8(batch))
        activations.append(torch.cat([m.float().mean(dim=(2, 3)) for m in maps.values()],
                                     dim=1).cpu().numpy())
        specs = specs or [LayerSpec(k, m.shape[1], m.shape[-1]) for k, m in maps.items()]
    n = len(indices)
    data = {
        "latent": (("image", "latent_dim"), np.concatenate(latents)),
        "class_index": ("image", np.full(n, -1 if cls is None else cls, dtype=np.int64)),
        "pixels": (("image", "y", "x", "rgb"), np.concatenate(images)),
        "activation": (("image", "gan_unit"), np.concatenate(activations)),
    }
    coords = {"image": np.arange(indices.start, indices.stop), **unit_coords("gan", specs)}
    attrs = {"kind": "samples", "gan": spec.name, "subset": subset, "seed": seed,
             "truncation": "default" if truncation is None else truncation,
             "start": indices.start, "count": n}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def sample_shard(gan: str, weights: str | Path | None, subset: str, seed: int, start: int,
                 count: int, batch_size: int, truncation: float | None = None,
                 device: str = "cpu") -> xr.Dataset:
    """Load the generator and sample images start .. start+count-1."""
    if count < 1 or batch_size < 1 or start < 0:
        raise UserError(f"need count >= 1, batch size >= 1 and start >= 0; got count {count}, "
                        f"batch size {batch_size}, start {start}")
    dev = resolve_device(device)
    spec = models.get(gan)
    if spec.kind != models.GENERATOR:
        raise UserError(f"{gan} is {spec.kind}, not a generator")
    subset_class(spec, subset)  # a class the generator lacks fails before weights load
    return sample_images(models.load(gan, weights, dev), subset, seed,
                         range(start, start + count), batch_size, truncation, dev)


def add_shard_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick a shard's images and how they are generated (sample, match)."""
    parser.add_argument("--subset", default=ALL, help="'all' or a class name (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first image index")
    parser.add_argument("--count", type=int, required=True, help="images in this shard")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--truncation", type=float, help="latent truncation (model default)")
    add_device_options(parser)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.sample",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="generator name")
    parser.add_argument("--weights", type=Path, help="generator weights file")
    add_shard_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="sample store to write (Zarr)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    ds = sample_shard(args.gan, args.weights, args.subset, args.seed, args.start, args.count,
                      args.batch_size, args.truncation, args.device)
    write_dataset(ds, args.out, encoding={
        "pixels": {"chunks": (min(256, args.count), *ds["pixels"].shape[1:])}})


if __name__ == "__main__":
    raise SystemExit(run(main))
