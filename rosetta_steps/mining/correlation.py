"""Exact, streaming unit-to-unit Pearson correlation between two models (paper, Eq. 1-2).

For every unit j of a generator G and k of a discriminative model D, both maps are bilinearly
resized (align_corners=False) to the larger of their two sizes, and the Pearson correlation is
taken over all n images and all pixels at once (Eq. 2 with the statistics of Eq. 1):

    corr(j, k) = cov(G^j, D^k) / sqrt(var(G^j) var(D^k))

The accumulator keeps sufficient statistics in float64 and never upsamples: resizing is linear,
so cross products are taken at the smaller size of each pair of resolutions (see `resize`), and
each layer group is projected once per distinct partner resolution. Activations are shifted per
unit by their mean over the first batch (Pearson is shift-invariant, and resizing maps a
constant to itself) so a large mean with a small spread loses no precision; a unit constant
in the first batch is shifted by its exact value, so a dead unit stays exactly 0 and
correlates 0. States of disjoint image shards merge exactly (`merge`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..core.units import LayerSpec
from .buffers import Buffers
from .resize import gram_factor, project_down, upsample_matrix, upsampled_sums

STATE = torch.float64
SUMS = ("shift", "native_sum", "native_sumsq", "sum", "sumsq")  # per side, in a saved state


def layer_specs(acts: Mapping[str, torch.Tensor], what: str = "activations") -> list[LayerSpec]:
    """The layer layout of a dict of activations [batch, channels, h, w] with square maps."""
    if not acts:
        raise ValueError(f"{what}: no layers given")
    specs = []
    for name, t in acts.items():
        if t.ndim != 4 or t.shape[-1] != t.shape[-2]:
            raise ValueError(f"{what}[{name!r}]: expected [batch, channels, h, w] with h == w, "
                             f"got shape {tuple(t.shape)}")
        specs.append(LayerSpec(str(name), int(t.shape[1]), int(t.shape[-1])))
    return specs


def _first_shift(x: torch.Tensor) -> torch.Tensor:
    """Per-unit shift from the first batch [units, batch, s, s]: its mean, or for a unit that is
    constant there its exact value (so a constant unit becomes exactly 0). Any shift is exact
    as long as it is the value subtracted, so it is rounded to the working dtype."""
    flat = x.reshape(x.shape[0], -1)
    constant = flat.amax(dim=1) == flat.amin(dim=1)
    mean = (flat.sum(dim=1) / flat.shape[1]).to(x.dtype)
    return torch.where(constant, flat[:, 0], mean).to(STATE)


class _Side:
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


class CorrelationAccumulator:
    """Streaming sufficient statistics for the G-vs-D correlation matrix of Eq. 2.

    `device` defaults to CUDA when available; `dtype` is the precision of the per-batch cross
    product GEMMs and projections (float64 by default; float32 is faster and was measured
    within 5e-7 of Eq. 2 by bench/bench_correlation.py).
    All running sums are float64 whatever `dtype` is.
    """

    def __init__(self, device: torch.device | str | None = None, dtype: torch.dtype = STATE):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_images = 0
        self.gan: _Side | None = None
        self.disc: _Side | None = None
        self.cross: torch.Tensor | None = None
        self._scratch = Buffers(self.device)

    def _init_layout(self, gan_specs: list[LayerSpec], disc_specs: list[LayerSpec]) -> None:
        gan_sizes = sorted({s.size for s in gan_specs})
        disc_sizes = sorted({s.size for s in disc_specs})
        self.gan = _Side("gan", gan_specs, disc_sizes, self.device)
        self.disc = _Side("disc", disc_specs, gan_sizes, self.device)
        self.cross = torch.zeros(self.gan.n_units, self.disc.n_units, dtype=STATE,
                                 device=self.device)

    def _check_layout(self, gan_specs: list[LayerSpec], disc_specs: list[LayerSpec]) -> None:
        if self.gan is None:
            self._init_layout(gan_specs, disc_specs)
        elif gan_specs != self.gan.specs or disc_specs != self.disc.specs:
            raise ValueError("layer layout differs from the first batch: every batch (and every "
                             "merged shard) must hook the same layers with the same shapes")

    @torch.no_grad()
    def update(self, gan_acts: Mapping[str, torch.Tensor],
               disc_acts: Mapping[str, torch.Tensor]) -> None:
        """Add a batch: dicts layer -> [batch, channels, h, w], the same images on both sides."""
        gan_specs = layer_specs(gan_acts, "gan_acts")
        disc_specs = layer_specs(disc_acts, "disc_acts")
        batches = {t.shape[0] for t in [*gan_acts.values(), *disc_acts.values()]}
        if len(batches) != 1:
            raise ValueError(f"batch sizes differ between layers: {sorted(batches)}")
        self._check_layout(gan_specs, disc_specs)
        first = self.n_images == 0
        scratch = self._scratch
        g = self.gan.grouped(gan_acts, first, self.dtype, scratch)
        d = self.disc.grouped(disc_acts, first, self.dtype, scratch)
        self.gan.add_sums(g, scratch)
        self.disc.add_sums(d, scratch)
        flat: dict[tuple[str, int, int], torch.Tensor] = {}

        def at_size(side: str, maps: dict[int, torch.Tensor], s: int, p: int) -> torch.Tensor:
            """Group of size s at partner size p (projected down when s > p), flattened to
            [channels, batch * pixels]; computed once per (side, s, p)."""
            if (side, s, p) not in flat:
                x = maps[s]
                if s > p:
                    n = x.shape[:2]
                    x = project_down(x, upsample_matrix(p, s, self.device, self.dtype),
                                     scratch(("half",), (*n, p, s), x.dtype),
                                     scratch((side, "down", s, p), (*n, p, p), x.dtype))
                flat[side, s, p] = x.view(x.shape[0], -1)
            return flat[side, s, p]

        for a, rows in self.gan.ranges.items():
            for b, cols in self.disc.ranges.items():
                block = self.cross[rows, cols]
                x, y = at_size("gan", g, a, b), at_size("disc", d, b, a)
                if self.dtype == STATE:
                    block.addmm_(x, y.T)
                else:
                    block += torch.mm(x, y.T, out=scratch(("cross",), block.shape, x.dtype))
        self.gan.add_squares(g)
        self.disc.add_squares(d)
        self.n_images += batches.pop()

    def _blocks(self):
        """(gan size, disc size, rows, cols, pixels, gan partner index, disc partner index)
        per pair of sizes."""
        for ib, (b, cols) in enumerate(self.disc.ranges.items()):
            for ia, (a, rows) in enumerate(self.gan.ranges.items()):
                yield a, b, rows, cols, self.n_images * max(a, b) ** 2, ib, ia

    def merge(self, other: CorrelationAccumulator) -> CorrelationAccumulator:
        """Add the statistics of a disjoint shard of images (exact); returns self."""
        if other.n_images == 0:
            return self
        if self.n_images == 0:
            self.load_state_dict(other.state_dict())
            return self
        self._check_layout(other.gan.specs, other.disc.specs)
        o = CorrelationAccumulator(self.device)
        o.load_state_dict(other.state_dict())
        dg, dd = o.gan.shift - self.gan.shift, o.disc.shift - self.disc.shift
        for _, _, rows, cols, n, ib, ia in o._blocks():
            sg, sd = o.gan.sum[rows, ib], o.disc.sum[cols, ia]
            o.cross[rows, cols] += (torch.outer(dg[rows], sd + n * dd[cols])
                                    + torch.outer(sg, dd[cols]))
        o.gan.reshift(dg, o.n_images)
        o.disc.reshift(dd, o.n_images)
        for mine, theirs in ((self.gan, o.gan), (self.disc, o.disc)):
            for name in SUMS[1:]:
                getattr(mine, name).add_(getattr(theirs, name))
        self.cross += o.cross
        self.n_images += o.n_images
        return self

    def correlation(self) -> torch.Tensor:
        """The [n_gan_units, n_disc_units] Pearson correlations (float64); 0 for a constant unit."""
        if self.n_images == 0:
            raise ValueError("no images accumulated")
        out = torch.empty_like(self.cross)
        for a, b, rows, cols, n, ib, ia in self._blocks():
            sg, sd = self.gan.sum[rows, ib], self.disc.sum[cols, ia]
            var_g = self.gan.sumsq[rows, ib] - sg**2 / n
            var_d = self.disc.sumsq[cols, ia] - sd**2 / n
            block = torch.addr(self.cross[rows, cols], sg, sd, alpha=-1 / n)  # covariance
            block.mul_(torch.where(var_g > 0, var_g.rsqrt(), 0.0)[:, None])
            block.mul_(torch.where(var_d > 0, var_d.rsqrt(), 0.0)[None, :])
            for _, g_group, g_given in self.gan.layers[a]:
                for _, d_group, d_given in self.disc.layers[b]:
                    out[g_given, d_given] = block[g_group, d_group]
        return out

    def native_stats(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-unit mean and std (Eq. 1, n*m^2 - 1 denominator) at the unit's own map size."""
        return {"gan": self.gan, "disc": self.disc}[side].native_stats(self.n_images)

    def state_dict(self) -> dict:
        """Everything needed to resume or merge: layouts, counts and float64 sums."""
        tensors = {"cross": self.cross[self.gan.inverse][:, self.disc.inverse]}
        for prefix, side in (("gan", self.gan), ("disc", self.disc)):
            tensors.update({f"{prefix}_{k}": v for k, v in side.state().items()})
        return {"n_images": self.n_images, "gan_layers": list(self.gan.specs),
                "disc_layers": list(self.disc.specs), "tensors": tensors}

    def load_state_dict(self, state: dict) -> None:
        self._init_layout(list(state["gan_layers"]), list(state["disc_layers"]))
        for key, value in state["tensors"].items():
            if key == "cross":
                value = torch.as_tensor(value).to(self.device)
                self.cross.copy_(value[self.gan.order][:, self.disc.order])
            else:
                prefix, name = key.split("_", 1)
                getattr(self, prefix).load(name, value)
        self.n_images = int(state["n_images"])
