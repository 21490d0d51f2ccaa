"""One model's side of the correlation accumulator (`correlation`): its units in group order
and their running sums, shifted per unit and float64 (the statistics of Eq. 1, at the unit's
own map size and at every partner size of Eq. 2).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..core.units import LayerSpec
from .buffers import Buffers
from .order import order_runs
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
    group order to the given unit order, `runs` are its runs of consecutive units (`order`
    module) and `layers[size]` lists, per layer of that size, its slice within the size's
    group.
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
                                                          len(order) - first + spec.channels)))
                    order += range(starts[i], starts[i + 1])
            self.ranges[size] = slice(first, len(order))
        self.n_units = len(order)
        self.order = torch.tensor(order, device=device)
        self.inverse = torch.argsort(self.order)
        self.runs = order_runs(order)
        self.unit_size = torch.cat([torch.full((r.stop - r.start,), float(size), dtype=STATE)
                                    for size, r in self.ranges.items()]).to(device)
        zeros = dict(dtype=STATE, device=device)
        self.shift = torch.zeros(self.n_units, **zeros)
        self.native_sum = torch.zeros(self.n_units, **zeros)
        self.native_sumsq = torch.zeros(self.n_units, **zeros)
        self.sum = torch.zeros(self.n_units, len(partner_sizes), **zeros)
        self.sumsq = torch.zeros(self.n_units, len(partner_sizes), **zeros)

    def chunks(self, size: int, chunk: int | None) -> list[slice]:
        """The size's group cut into runs of at most `chunk` units (all of it for None)."""
        r = self.ranges[size]
        step = chunk or r.stop - r.start
        return [slice(lo, min(lo + step, r.stop)) for lo in range(r.start, r.stop, step)]

    def group(self, acts: Mapping[str, torch.Tensor], size: int, units: slice, first: bool,
              dtype: torch.dtype, scratch: Buffers) -> torch.Tensor:
        """Shifted maps [units, batch, s, s] of `units` (a run of the size's group, in group
        order), the layers concatenated.

        Channels first, so that flattening a group for the cross-product GEMM is free; one
        copy converts device, dtype and layout at once, into a buffer reused between batches.
        """
        batch = next(iter(acts.values())).shape[0]
        x = scratch((self.name, "group", size), (units.stop - units.start, batch, size, size),
                    dtype)
        for spec, group in self.layers[size]:
            at = self.ranges[size].start + group.start  # the layer's first unit
            lo, hi = max(at, units.start), min(at + spec.channels, units.stop)
            if lo >= hi:
                continue
            src = acts[spec.name]
            if hi - lo < spec.channels:
                src = src[:, lo - at:hi - at]
            dst = x[lo - units.start:hi - units.start]
            if not src.is_contiguous() and src.is_contiguous(memory_format=torch.channels_last):
                # [batch, h, w, channels] in memory: a 2-D transposing copy is faster
                dst.view(hi - lo, -1).copy_(src.permute(0, 2, 3, 1).reshape(-1, hi - lo).T)
            else:
                dst.copy_(src.transpose(0, 1))
        if first:
            self.shift[units] = _first_shift(x)
        return x.sub_(self.shift[units].to(dtype).view(-1, 1, 1, 1))

    def grouped(self, acts: Mapping[str, torch.Tensor], first: bool, dtype: torch.dtype,
                scratch: Buffers) -> dict[int, torch.Tensor]:
        """`group` of every size's whole group."""
        return {size: self.group(acts, size, r, first, dtype, scratch)
                for size, r in self.ranges.items()}

    def add_sums(self, size: int, units: slice, x: torch.Tensor, scratch: Buffers) -> None:
        """Sums of the grouped maps `x` of `units` at their size and at each partner size;
        sums of squares at larger partner sizes (the rest come from `add_squares`)."""
        total = x.view(x.shape[0], -1).sum(dim=1).to(STATE)
        self.native_sum[units] += total
        map_sums = None
        for i, p in enumerate(self.partner_sizes):
            if p > size:
                if map_sums is None:
                    map_sums = torch.sum(x, dim=1, out=scratch(
                        ("map_sums",), (x.shape[0], *x.shape[2:]), x.dtype))
                total_p, squares_p = upsampled_sums(
                    x, upsample_matrix(size, p, x.device, x.dtype),
                    gram_factor(size, p, x.device, x.dtype), map_sums,
                    scratch(("gram",), x.shape, x.dtype),
                    scratch(("gram_out",), x.shape, x.dtype))
                self.sum[units, i] += total_p.to(STATE)
                self.sumsq[units, i] += squares_p.to(STATE)
            else:
                self.sum[units, i] += total

    def add_squares(self, size: int, units: slice, x: torch.Tensor) -> None:
        """Sums of squares of the grouped maps `x` of `units` at their size, squaring them in
        place (their last use)."""
        squares = x.view(x.shape[0], -1).square_().sum(dim=1).to(STATE)
        self.native_sumsq[units] += squares
        for i, p in enumerate(self.partner_sizes):
            if p <= size:
                self.sumsq[units, i] += squares

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
