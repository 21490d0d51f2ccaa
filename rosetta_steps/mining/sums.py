"""One model's side of the correlation accumulator (`correlation`): its units in group order
and their running sums, shifted per unit and float64 (the statistics of Eq. 1, at the unit's
own map size and at every partner size of Eq. 2).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..core.units import LayerSpec
from .buffers import Buffers
from .resize import gram_factor, upsample_matrix, upsampled_sums

STATE = torch.float64
SUMS = ("shift", "native_sum", "native_sumsq", "sum", "sumsq")  # per side, in a saved state
PARTNER_SUMS = ("sum", "sumsq")  # of SUMS, those kept per partner resolution (units x sizes)


def _first_shift(x: torch.Tensor) -> torch.Tensor:
    """Per-unit shift from the first batch [units, batch, s, s]: its mean, or for a unit that is
    constant there its exact value (so a constant unit becomes exactly 0). Any shift is exact
    as long as it is the value subtracted, so it is rounded to the working dtype."""
    flat = x.reshape(x.shape[0], -1)
    constant = flat.amax(dim=1) == flat.amin(dim=1)
    mean = (flat.sum(dim=1) / flat.shape[1]).to(x.dtype)
    return torch.where(constant, flat[:, 0], mean).to(STATE)


class Side:
    """One model's layer layout and its running sums (shifted, float64).

    Internally units are kept in "group order": by map size, then in the order given, so that
    each size is a contiguous range (`ranges`) and blocks are updated in place. `order` maps
    group order to the given unit order and `layers[size]` lists, per layer of that size, its
    slice within the size's group and its slice in the given order.
    """

    def __init__(self, name: str, specs: list[LayerSpec], partner_sizes: list[int],
                 device: torch.device):
        self.name = name
        self.specs = specs
        self.sizes = sorted({s.size for s in specs})
        self.partner_sizes = partner_sizes
        starts = torch.tensor([0, *(s.channels for s in specs)]).cumsum(0).tolist()
        order, self.ranges, self.layers = [], {}, {}
        for size in self.sizes:
            first, self.layers[size] = len(order), []
            for i, spec in enumerate(specs):
                if spec.size == size:
                    self.layers[size].append((spec, slice(len(order) - first,
                                                          len(order) - first + spec.channels),
                                              slice(starts[i], starts[i + 1])))
                    order += range(starts[i], starts[i + 1])
            self.ranges[size] = slice(first, len(order))
        self.n_units = len(order)
        self.order = torch.tensor(order, device=device)
        self.inverse = torch.argsort(self.order)
        self.unit_size = torch.cat([torch.full((r.stop - r.start,), float(size), dtype=STATE)
                                    for size, r in self.ranges.items()]).to(device)
        zeros = dict(dtype=STATE, device=device)
        self.shift = torch.zeros(self.n_units, **zeros)
        self.native_sum = torch.zeros(self.n_units, **zeros)
        self.native_sumsq = torch.zeros(self.n_units, **zeros)
        self.sum = torch.zeros(self.n_units, len(partner_sizes), **zeros)
        self.sumsq = torch.zeros(self.n_units, len(partner_sizes), **zeros)

    def grouped(self, acts: Mapping[str, torch.Tensor], first: bool, dtype: torch.dtype,
                scratch: Buffers) -> dict[int, torch.Tensor]:
        """Shifted maps [channels, batch, s, s] per size, the layers of a size concatenated.

        Channels first, so that flattening a group for the cross-product GEMM is free; one
        copy converts device, dtype and layout at once, into a buffer reused between batches.
        """
        out = {}
        batch = next(iter(acts.values())).shape[0]
        for size, r in self.ranges.items():
            x = scratch((self.name, "group", size), (r.stop - r.start, batch, size, size), dtype)
            for spec, group, _ in self.layers[size]:
                src = acts[spec.name]
                if not src.is_contiguous() and src.is_contiguous(memory_format=torch.channels_last):
                    # [batch, h, w, channels] in memory: a 2-D transposing copy is faster
                    src_2d = src.permute(0, 2, 3, 1).reshape(-1, spec.channels)
                    x[group].view(spec.channels, -1).copy_(src_2d.T)
                else:
                    x[group].copy_(src.transpose(0, 1))
            if first:
                self.shift[r] = _first_shift(x)
            out[size] = x.sub_(self.shift[r].to(dtype).view(-1, 1, 1, 1))
        return out

    def add_sums(self, grouped: dict[int, torch.Tensor], scratch: Buffers) -> None:
        """Sums at the unit's size and at each partner size; sums of squares at larger
        partner sizes (the rest come from `add_squares`)."""
        for size, x in grouped.items():
            r = self.ranges[size]
            total = x.view(x.shape[0], -1).sum(dim=1).to(STATE)
            self.native_sum[r] += total
            map_sums = None
            for i, p in enumerate(self.partner_sizes):
                if p > size:
                    map_sums = x.sum(dim=1) if map_sums is None else map_sums
                    total_p, squares_p = upsampled_sums(
                        x, upsample_matrix(size, p, x.device, x.dtype),
                        gram_factor(size, p, x.device, x.dtype), map_sums,
                        scratch(("gram",), x.shape, x.dtype),
                        scratch(("gram_out",), x.shape, x.dtype))
                    self.sum[r, i] += total_p.to(STATE)
                    self.sumsq[r, i] += squares_p.to(STATE)
                else:
                    self.sum[r, i] += total

    def add_squares(self, grouped: dict[int, torch.Tensor]) -> None:
        """Sums of squares at the unit's size, squaring the maps in place (their last use)."""
        for size, x in grouped.items():
            r = self.ranges[size]
            squares = x.view(x.shape[0], -1).square_().sum(dim=1).to(STATE)
            self.native_sumsq[r] += squares
            for i, p in enumerate(self.partner_sizes):
                if p <= size:
                    self.sumsq[r, i] += squares

    def reshift(self, delta: torch.Tensor, n_images: int) -> None:
        """Re-express the sums around shift - delta: x - (c - delta) = (x - c) + delta."""
        n_native = n_images * self.unit_size**2
        self.native_sumsq += 2 * delta * self.native_sum + n_native * delta**2
        self.native_sum += n_native * delta
        partner = torch.tensor(self.partner_sizes, dtype=STATE, device=delta.device)
        n_pair = n_images * torch.maximum(self.unit_size[:, None], partner[None, :]) ** 2
        self.sumsq += 2 * delta[:, None] * self.sum + n_pair * delta[:, None] ** 2
        self.sum += n_pair * delta[:, None]
        self.shift -= delta

    def native_stats(self, n_images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (Eq. 1) per unit at its own size, in the given unit order."""
        n = n_images * self.unit_size**2
        mean = self.native_sum / n
        var = (self.native_sumsq - self.native_sum**2 / n).clamp_min(0) / (n - 1).clamp_min(1)
        return (self.shift + mean)[self.inverse], var.sqrt()[self.inverse]

    def state(self) -> dict[str, torch.Tensor]:
        """The sums in the given unit order."""
        return {k: getattr(self, k)[self.inverse] for k in SUMS}

    def load(self, name: str, value: torch.Tensor) -> None:
        getattr(self, name).copy_(torch.as_tensor(value).to(self.shift.device)[self.order])
