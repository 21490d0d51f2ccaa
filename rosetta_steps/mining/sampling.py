"""A shard's images batch by batch with the maps of the model they are anchored on, and the
sample store that keeps them for the pages.

The paper anchors on a generator: image i of a (generator, subset, seed) comes from the latent
that depends only on (seed, i) (`Latent.sample`), so shards of any size line up with the match
shards and raising the image count only adds shards. A subset is `all` for an unconditional
generator or a class name (e.g. `briard`) for a class-conditional one. A dictionary anchored on
a data set (`core.datasets`) reads image i of the data set instead, and its anchor, a
discriminative model, plays G's role: its maps of each image are the "G" maps (the subset is
the data set's name). The sample store keeps, per image: the latent and class (generators
only), the uint8 pixels and the spatial mean of every anchor unit's map, so a page can rank
images by a concept's activation, and redraw its maps from the latents or the stored pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from .. import models
from ..core.cli import UserError
from ..core.datasets import Dataset
from ..core.devices import forward_precision
from ..core.images import to_uint8, to_unit_range
from ..core.stores import unit_coords, write_dataset
from ..core.units import ALL, LayerSpec

Loaded = tuple[models.ModelSpec, torch.nn.Module]  # as models.load returns


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


def check_shard(start: int, count: int, batch_size: int, nulls: int = 0) -> None:
    """One line unless the shard is well formed; with null permutations every batch needs a
    second image to pair with (`mining.null`)."""
    if count < 1 or batch_size < 1 or start < 0:
        raise UserError(f"need count >= 1, batch size >= 1 and start >= 0; got count {count}, "
                        f"batch size {batch_size}, start {start}")
    if nulls and (batch_size < 2 or count % batch_size == 1):
        raise UserError(f"a null model pairs images within a batch, but {count} images in "
                        f"batches of {batch_size} leave a batch of 1: change the batch size "
                        "or the shard size")


def generator_spec(name: str) -> models.ModelSpec:
    spec = models.get(name)
    if spec.kind != models.GENERATOR:
        raise UserError(f"{name} is {spec.kind}, not a generator")
    return spec


def anchor_spec(name: str, data: Dataset | None) -> models.ModelSpec:
    """The model a shard is anchored on: a generator, or with a data set a discriminative
    model that sees its images."""
    if data is None:
        return generator_spec(name)
    spec = models.get(name)
    if spec.kind != models.DISCRIMINATIVE:
        raise UserError(f"{name} is a {spec.kind}: anchor a data set on a discriminative "
                        "model, which sees its images")
    return spec


def check_finite(model: str, maps: Mapping[str, torch.Tensor], first_image: int) -> None:
    """A non-finite activation stops the run in one line naming model, layer, unit and image:
    it would turn every correlation of its unit into NaN. A map's sum is not finite when one
    of its values is not (or, rarely, when finite values overflow it: then nothing is found
    below and the run goes on); one read of the maps and one device sync per batch, the unit
    looked for only when a sum is not finite."""
    if torch.isfinite(torch.stack([m.sum() for m in maps.values()])).all():
        return
    for layer, m in maps.items():
        bad = ~torch.isfinite(m)
        if bad.any():
            image, channel = (int(i) for i in bad.flatten(2).any(dim=2).nonzero()[0])
            raise UserError(f"{model} layer {layer} unit {channel} is not finite on image "
                            f"{first_image + image}: the model or its weights are broken")


def check_images(model: str, images: torch.Tensor, first_image: int) -> None:
    """A generator's non-finite pixels stop the run in one line naming it and the image:
    stored as uint8 they would pass as black, and the first D's maps would take the blame."""
    if torch.isfinite(images.sum()):
        return
    bad = (~torch.isfinite(images)).flatten(1).any(dim=1).nonzero()
    if len(bad):  # else finite values overflowed the sum
        raise UserError(f"{model}'s image {first_image + int(bad[0])} is not finite (NaN or "
                        "infinite pixels): the generator or its weights are broken")


def generated_batches(gan: Loaded, seed: int, indices: range, batch_size: int,
                      truncation: float | None = None, class_index: int | None = None,
                      device: torch.device | str = "cpu", desc: str | None = None,
                      autocast: str = "off"
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, dict]]:
    """(latents, classes, images in [-1, 1], G maps) batch by batch over `indices`; the
    forward passes in `autocast` (`core.devices.forward_precision`)."""
    spec, model = gan
    for lo in tqdm(indices[::batch_size], desc=desc or spec.name, unit="batch",
                   mininterval=1.0):
        z = spec.latent.sample(seed, range(lo, min(lo + batch_size, indices.stop)),
                               truncation).to(device)
        y = None if class_index is None else torch.full((len(z),), class_index,
                                                        dtype=torch.long, device=device)
        with forward_precision(torch.device(device), autocast):
            images, maps = spec.run(model, z, y, truncation)
        check_finite(spec.name, maps, lo)  # the first layer that breaks, if a hooked one does
        check_images(spec.name, images, lo)
        yield z, y, images, maps


def dataset_batches(anchor: Loaded, data: Dataset, indices: range, batch_size: int,
                    device: torch.device | str = "cpu", desc: str | None = None,
                    autocast: str = "off"
                    ) -> Iterator[tuple[None, None, torch.Tensor, dict]]:
    """As `generated_batches` for a data set: (None, None, images in [-1, 1], the anchor's
    maps of them through its own preprocessing) batch by batch over `indices`. The next
    batch's files are decoded (by as many threads as torch uses) while the models run."""
    spec, model = anchor
    starts = list(indices[::batch_size])
    workers = torch.get_num_threads()

    def read(k: int) -> np.ndarray:
        return data.read(range(starts[k], min(starts[k] + batch_size, indices.stop)), workers)

    with ThreadPoolExecutor(1) as ahead:
        pending = ahead.submit(read, 0) if starts else None
        for k, lo in enumerate(tqdm(starts, desc=desc or spec.name, unit="batch",
                                    mininterval=1.0)):
            images = to_unit_range(pending.result(), device)
            if k + 1 < len(starts):
                pending = ahead.submit(read, k + 1)
            with forward_precision(torch.device(device), autocast):
                maps = spec.run(model, spec.preprocess(images))[1]
            check_finite(spec.name, maps, lo)
            yield None, None, images, maps


class SampleCollector:
    """The sample dataset of a shard, collected batch by batch from `generated_batches` or
    `dataset_batches` (see the module docstring); `dataset` marks a data set's shard."""

    def __init__(self, spec: models.ModelSpec, subset: str, seed: int, indices: range,
                 truncation: float | None, class_index: int | None, dataset: bool = False):
        self.spec, self.subset, self.seed, self.indices = spec, subset, seed, indices
        self.truncation, self.class_index, self.is_dataset = truncation, class_index, dataset
        self.latents, self.images, self.activations = [], [], []
        self.specs: list[LayerSpec] | None = None

    def add(self, z: torch.Tensor | None, images: torch.Tensor,
            maps: Mapping[str, torch.Tensor]) -> None:
        if z is not None:
            self.latents.append(z.float().cpu().numpy())
        self.images.append(to_uint8(images.float()))
        self.activations.append(torch.cat([m.float().mean(dim=(2, 3)) for m in maps.values()],
                                          dim=1).cpu().numpy())
        self.specs = self.specs or [LayerSpec(k, m.shape[1], m.shape[-1])
                                    for k, m in maps.items()]

    def dataset(self) -> xr.Dataset:
        n, cls = len(self.indices), self.class_index
        data = {"latent": (("image", "latent_dim"), np.concatenate(self.latents))
                } if self.latents else {}  # a data set's images have no latent
        data |= {
            "class_index": ("image", np.full(n, -1 if cls is None else cls, dtype=np.int64)),
            "pixels": (("image", "y", "x", "rgb"), np.concatenate(self.images)),
            "activation": (("image", "gan_unit"), np.concatenate(self.activations)),
        }
        coords = {"image": np.arange(self.indices.start, self.indices.stop),
                  **unit_coords("gan", self.specs)}
        attrs = {"kind": "samples", "gan": self.spec.name, "subset": self.subset,
                 "seed": self.seed,
                 "truncation": "default" if self.truncation is None else self.truncation,
                 "start": self.indices.start, "count": n}
        if self.is_dataset:
            attrs["dataset"] = self.subset
        return xr.Dataset(data, coords=coords, attrs=attrs)


def write_samples(ds: xr.Dataset, path: str | Path) -> None:
    """The sample store, its pixels chunked by up to 256 images."""
    write_dataset(ds, path, encoding={
        "pixels": {"chunks": (min(256, ds.sizes["image"]), *ds["pixels"].shape[1:])}})


def anchored_batches(anchor: Loaded, seed: int, indices: range, batch_size: int,
                     truncation: float | None = None, class_index: int | None = None,
                     device: torch.device | str = "cpu", desc: str | None = None,
                     autocast: str = "off", data: Dataset | None = None) -> Iterator[tuple]:
    """`generated_batches`, or `dataset_batches` of `data` when it is given."""
    if data is None:
        return generated_batches(anchor, seed, indices, batch_size, truncation, class_index,
                                 device, desc, autocast)
    return dataset_batches(anchor, data, indices, batch_size, device, desc, autocast)


@torch.no_grad()
def sample_images(gan: Loaded, subset: str, seed: int, indices: range, batch_size: int,
                  truncation: float | None = None, device: torch.device | str = "cpu",
                  data: Dataset | None = None) -> xr.Dataset:
    """The sample dataset of images `indices` (see the module docstring); with `data`, of
    that data set (named `subset`) anchored on `gan`."""
    spec = gan[0]
    cls = None if data is not None else subset_class(spec, subset)
    samples = SampleCollector(spec, subset, seed, indices, truncation, cls, data is not None)
    for z, _, batch, maps in anchored_batches(gan, seed, indices, batch_size, truncation, cls,
                                              device, f"sample {spec.name}/{subset}",
                                              data=data):
        samples.add(z, batch, maps)
    return samples.dataset()


def sample_shard(gan: str, weights: str | Path | None, subset: str, seed: int, start: int,
                 count: int, batch_size: int, truncation: float | None = None,
                 device: torch.device | str = "cpu", data: Dataset | None = None
                 ) -> xr.Dataset:
    """Load the generator (or, with `data`, the anchor) and sample images start ..
    start+count-1."""
    check_shard(start, count, batch_size)
    check_source(gan, subset, data, start + count)
    return sample_images(models.load(gan, weights, device), subset, seed,
                         range(start, start + count), batch_size, truncation, device, data)


def check_source(gan: str, subset: str, data: Dataset | None, stop: int) -> int | None:
    """Before any weights load: one line unless `gan` can anchor the images (a class the
    generator has; a data set with `stop` images or more). Returns the subset's class."""
    spec = anchor_spec(gan, data)
    if data is None:
        return subset_class(spec, subset)
    data.check_count(stop)
    return None
