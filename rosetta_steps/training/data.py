"""Training and held-out images of the shapes world, batches and SimCLR-style augmentations."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..core import world


def labelled(n: int, seed: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n images in [-1, 1] [n, 3, 64, 64] and multi-hot labels [n, shapes + colours]."""
    batch = world.render(n, seed, start=start)
    labels = torch.from_numpy(batch.shape_labels.astype("float32"))
    colors = torch.from_numpy(batch.color_labels.astype("float32"))
    return world.to_tensor(batch.images), torch.cat([labels, colors], dim=1)


def held_out(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels that no training pool of this seed contains."""
    return labelled(n, seed, start=world.HELD_OUT_START)


class IndexBatches:
    """Batches of indices into a pool of n, reshuffled every epoch, without end. The epoch's
    order and the position in it (`state_dict`) go into a checkpoint, so that a resumed run
    draws the batches the uninterrupted one would have."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.order: torch.Tensor | None = None  # drawn with the first batch
        self.pos = 0

    def __iter__(self) -> IndexBatches:
        return self

    def __next__(self) -> torch.Tensor:
        if self.order is None or self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.generator), 0
        self.pos += self.batch_size
        return self.order[self.pos - self.batch_size:self.pos]

    def state_dict(self) -> dict:
        return {"order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.pos = state["order"], state["pos"]


def index_batches(n: int, batch_size: int, steps: int, generator: torch.Generator
                  ) -> Iterator[torch.Tensor]:
    """`steps` batches of indices into a pool of n, reshuffled every epoch."""
    return itertools.islice(IndexBatches(n, batch_size, generator), steps)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random view of each image: resized crop, flip, colour jitter, sometimes greyscale."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    scale = uniform(0.35, 1.0).sqrt()  # side of the crop, as a fraction of the image
    aspect = uniform(math.log(3 / 4), math.log(4 / 3)).exp().sqrt()
    sx, sy = (scale * aspect).clamp(max=1), (scale / aspect).clamp(max=1)
    tx, ty = (1 - sx) * uniform(-1, 1), (1 - sy) * uniform(-1, 1)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    x = (x + 1) / 2
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    sat = uniform(0.4, 1.6).view(n, 1, 1, 1)
    x = grey + sat * (x - grey)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + uniform(0.6, 1.4).view(n, 1, 1, 1) * (x - mean)
    x = x * uniform(0.6, 1.4).view(n, 1, 1, 1)
    to_grey = (torch.rand(n, generator=generator) < 0.2).view(n, 1, 1, 1)
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = torch.where(to_grey, grey.expand_as(x), x)
    return (x.clamp(0, 1) * 2 - 1).contiguous()
