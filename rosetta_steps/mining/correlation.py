"""Exact, streaming unit-to-unit Pearson correlation between two models (paper, Eq. 1-2).

For every unit j of a generator G and k of a discriminative model D, both maps are bilinearly
resized (align_corners=False) to the larger of their two sizes, and the Pearson correlation is
taken over all n images and all pixels at once (Eq. 2 with the statistics of Eq. 1):

    corr(j, k) = cov(G^j, D^k) / sqrt(var(G^j) var(D^k))

The accumulator keeps sufficient statistics in float64 (a null's cross products in float32,
below) and never upsamples: resizing is linear, so cross products are taken at the smaller
size of each pair of resolutions (see `resize`), and each layer group is projected once per
distinct partner resolution. Activations are shifted per
unit by their mean over the first batch (Pearson is shift-invariant, and resizing maps a
constant to itself) so a large mean with a small spread loses no precision; a unit constant
in the first batch is shifted by its exact value, so a dead unit stays exactly 0 and
correlates 0. States of disjoint image shards merge exactly (`merge`).

With `nulls` > 0 the accumulator also keeps the cross products of the null model (`null`):
G's maps of image i against D's maps of another image of the same batch, D's batch rolled by
1, 2, ... images. Rolling permutes images, so every unit's sums are the observed ones and
only the cross products differ: a null costs one more GEMM per block, no forward pass. Those
GEMMs and their running sums are float32 whatever `dtype` is (`NULL`): a null's correlations
are within about 1e-6 of Eq. 2, ample for counting its best buddies, at half the cost and
half the memory of a float64 matrix (its per-unit sums are the observed ones, float64).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from ..core.units import LayerSpec
from .buffers import Buffers
from .null import null_shift
from .order import in_order, to_given, to_group
from .resize import project_down, upsample_matrix
from .sums import STATE, SUMS, Side

NULL = torch.float32  # the null's cross products and their sums: within 1e-6 of Eq. 2


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


class CorrelationAccumulator:
    """Streaming sufficient statistics for the G-vs-D correlation matrix of Eq. 2.

    `device` defaults to CUDA when available; `dtype` is the precision of the per-batch cross
    product GEMMs and projections (float64 by default; float32 is faster and was measured
    within 5e-7 of Eq. 2 by bench/bench_correlation.py).
    The observed running sums are float64 whatever `dtype` is. `nulls` null permutations are
    kept beside the observed pairing (`null.null_shift`; every batch then needs 2 images or
    more), their cross products in float32 (`NULL`).
    Accumulators updated one after another may share `scratch` (their per-batch
    temporaries), so a pass over many blocks holds one set of them (`matching`). With
    `chunk`, D's side of a batch is regrouped, projected and multiplied `chunk` units at a
    time, so the scratch holds that many of D's maps, not all of them: the same sums, but
    not bit for bit (a GEMM's last columns are an edge case of the BLAS kernel, which rounds
    them differently in the last bits).
    """

    def __init__(self, device: torch.device | str | None = None, dtype: torch.dtype = STATE,
                 nulls: int = 0, scratch: Buffers | None = None, chunk: int | None = None):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_images = 0
        self.gan: Side | None = None
        self.disc: Side | None = None
        self.nulls = nulls
        self.chunk = chunk
        self.cross: torch.Tensor | None = None
        self.null_cross: list[torch.Tensor] = []  # per null permutation, like `cross`
        self._scratch = scratch if scratch is not None else Buffers(self.device)

    def _init_layout(self, gan_specs: list[LayerSpec], disc_specs: list[LayerSpec],
                     new: Callable[..., torch.Tensor] = torch.zeros) -> None:
        gan_sizes = sorted({s.size for s in gan_specs})
        disc_sizes = sorted({s.size for s in disc_specs})
        self.gan = Side("gan", gan_specs, disc_sizes, self.device)
        self.disc = Side("disc", disc_specs, gan_sizes, self.device)
        self.cross = new(self.gan.n_units, self.disc.n_units, dtype=STATE, device=self.device)
        self.null_cross = [new(*self.cross.shape, dtype=NULL, device=self.device)
                           for _ in range(self.nulls)]

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
        batch = batches.pop()
        shifts = [null_shift(r, batch) for r in range(1, self.nulls + 1)]
        first = self.n_images == 0
        scratch = self._scratch
        g = self.gan.grouped(gan_acts, first, self.dtype, scratch)
        for a, rows in self.gan.ranges.items():
            self.gan.add_sums(a, rows, g[a], scratch)
        g_at: dict[tuple[int, int], torch.Tensor] = {}  # G's groups at each partner size
        for b in self.disc.ranges:
            for cols in self.disc.chunks(b, self.chunk):
                y_b = self.disc.group(disc_acts, b, cols, first, self.dtype, scratch)
                self.disc.add_sums(b, cols, y_b, scratch)
                for a, rows in self.gan.ranges.items():
                    if (a, b) not in g_at:
                        g_at[a, b] = self._at_size("gan", g[a], b)
                    x, y = g_at[a, b], self._at_size("disc", y_b, a)
                    self._add_product(self.cross[rows, cols], x, y)
                    if shifts:
                        self._add_nulls([c[rows, cols] for c in self.null_cross], x, y,
                                        batch, shifts)
                self.disc.add_squares(b, cols, y_b)
        for a, rows in self.gan.ranges.items():
            self.gan.add_squares(a, rows, g[a])
        self.n_images += batch

    def _at_size(self, side: str, x: torch.Tensor, p: int) -> torch.Tensor:
        """Grouped maps [units, batch, s, s] at partner size p (projected down when s > p),
        flattened to [units, batch * pixels]."""
        s = x.shape[-1]
        if s > p:
            n = x.shape[:2]
            x = project_down(x, upsample_matrix(p, s, self.device, self.dtype),
                             self._scratch(("half",), (*n, p, s), x.dtype),
                             self._scratch((side, "down", s, p), (*n, p, p), x.dtype))
        return x.view(x.shape[0], -1)

    def _add_nulls(self, blocks: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   batch: int, shifts: list[int]) -> None:
        """blocks[i] += x (y with its images rolled by shifts[i])^T, in float32 (`NULL`)."""
        scratch = self._scratch
        if x.dtype != NULL:
            x = scratch(("null", "gan"), x.shape, NULL).copy_(x)
        y = y.view(y.shape[0], batch, -1)
        rolled = scratch(("null", "disc"), y.shape, NULL)
        for block, shift in zip(blocks, shifts, strict=True):
            rolled[:, shift:] = y[:, :batch - shift]  # y.roll(shift, dims=1), converted
            rolled[:, :shift] = y[:, batch - shift:]
            block.addmm_(x, rolled.view(y.shape[0], -1).T)

    def _add_product(self, block: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        """block += x y^T, in place (through a scratch buffer below float64)."""
        if self.dtype == STATE:
            block.addmm_(x, y.T)
        else:
            product = torch.mm(x, y.T, out=self._scratch(("cross",), block.shape, x.dtype))
            block += self._scratch(("sum",), block.shape, STATE).copy_(product)

    def _blocks(self):
        """(rows, cols, pixels, gan partner index, disc partner index) per pair of sizes."""
        for ib, (b, cols) in enumerate(self.disc.ranges.items()):
            for ia, (a, rows) in enumerate(self.gan.ranges.items()):
                yield rows, cols, self.n_images * max(a, b) ** 2, ib, ia

    def merge(self, other: CorrelationAccumulator, consume: bool = False
              ) -> CorrelationAccumulator:
        """Add the statistics of a disjoint shard of images (exact); returns self. With
        `consume`, `other` is used up instead of copied (its matrices may become this one's,
        or are shifted in place): a shard just read from a store, merged and dropped."""
        if other.n_images == 0:
            return self
        if self.n_images == 0:
            self.load_state_dict(other.state_dict(), copy=not consume)
            return self
        self._check_layout(other.gan.specs, other.disc.specs)
        if other.nulls != self.nulls:
            raise ValueError(f"null permutations differ: {self.nulls} and {other.nulls}")
        if consume:
            o = other
        else:
            o = CorrelationAccumulator(self.device, nulls=self.nulls)
            o.load_state_dict(other.state_dict())
        dg, dd = o.gan.shift - self.gan.shift, o.disc.shift - self.disc.shift
        for rows, cols, n, ib, ia in o._blocks():
            sg, sd = o.gan.sum[rows, ib], o.disc.sum[cols, ia]
            # the same for every pairing of the images: it needs only the per-unit sums
            delta = torch.outer(dg[rows], sd + n * dd[cols]) + torch.outer(sg, dd[cols])
            for c in (o.cross, *o.null_cross):
                c[rows, cols] += delta
        o.gan.reshift(dg, o.n_images)
        o.disc.reshift(dd, o.n_images)
        for mine, theirs in ((self.gan, o.gan), (self.disc, o.disc)):
            for name in SUMS[1:]:
                getattr(mine, name).add_(getattr(theirs, name))
        for mine, theirs in zip((self.cross, *self.null_cross), (o.cross, *o.null_cross),
                                strict=True):
            mine += theirs
        self.n_images += o.n_images
        return self

    def correlation(self, null: int = 0) -> torch.Tensor:
        """The [n_gan_units, n_disc_units] Pearson correlations (float64); 0 for a constant unit.
        `null` r >= 1: those of null permutation r instead of the observed pairing."""
        if self.n_images == 0:
            raise ValueError("no images accumulated")
        if not 0 <= null <= self.nulls:
            raise ValueError(f"null permutation {null} of {self.nulls}")
        cross = self.null_cross[null - 1] if null else self.cross
        out = torch.empty_like(self.cross)  # in group order
        for rows, cols, n, ib, ia in self._blocks():
            sg, sd = self.gan.sum[rows, ib], self.disc.sum[cols, ia]
            var_g = self.gan.sumsq[rows, ib] - sg**2 / n
            var_d = self.disc.sumsq[cols, ia] - sd**2 / n
            block = torch.addr(cross[rows, cols].to(STATE), sg, sd, alpha=-1 / n,
                               out=out[rows, cols])  # covariance (a null's in float64)
            block.mul_(torch.where(var_g > 0, var_g.rsqrt(), 0.0)[:, None])
            block.mul_(torch.where(var_d > 0, var_d.rsqrt(), 0.0)[None, :])
        return to_given(out, self.gan.runs, self.disc.runs)

    def native_stats(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-unit mean and std (Eq. 1, n*m^2 - 1 denominator) at the unit's own map size."""
        return {"gan": self.gan, "disc": self.disc}[side].native_stats(self.n_images)

    def state_dict(self) -> dict:
        """Everything needed to resume or merge: layouts, counts and sums (the nulls' cross
        products float32, the rest float64), in the given unit order (the matrices are views
        of the accumulator's where that is its group order, as a module's state_dict holds its
        parameters)."""
        runs = self.gan.runs, self.disc.runs
        tensors = {"cross": to_given(self.cross, *runs)}
        tensors.update({f"null_cross_{r + 1}": to_given(c, *runs)
                        for r, c in enumerate(self.null_cross)})
        for prefix, side in (("gan", self.gan), ("disc", self.disc)):
            tensors.update({f"{prefix}_{k}": v for k, v in side.state().items()})
        return {"n_images": self.n_images, "gan_layers": list(self.gan.specs),
                "disc_layers": list(self.disc.specs), "tensors": tensors}

    def load_state_dict(self, state: dict, copy: bool = True) -> None:
        """Take a `state_dict`; without `copy`, its matrices become the accumulator's own where
        no reordering is needed (a state just read from a store: no second 7 GB copy)."""
        # every entry of the matrices is set below: no zeros to write first
        self._init_layout(list(state["gan_layers"]), list(state["disc_layers"]), torch.empty)
        matrices = {"cross": self.cross, **{f"null_cross_{r + 1}": c
                                            for r, c in enumerate(self.null_cross)}}
        nulls = sum(key.startswith("null_cross_") for key in state["tensors"])
        if nulls != self.nulls:
            raise ValueError(f"the state holds {nulls} null permutations, not {self.nulls}")
        if set(matrices) - set(state["tensors"]):
            raise KeyError(f"the state lacks {sorted(set(matrices) - set(state['tensors']))}")
        for key, value in state["tensors"].items():
            if key in matrices:
                value = torch.as_tensor(value)
                if value.shape != self.cross.shape:
                    raise ValueError(f"{key} is {tuple(value.shape)}, the layers make "
                                     f"{tuple(self.cross.shape)}")
                if (not copy and in_order(self.gan.runs, self.disc.runs)
                        and value.device == self.device and value.dtype == matrices[key].dtype
                        and value.is_contiguous()):
                    matrices[key] = value
                else:
                    to_group(value, self.gan.runs, self.disc.runs, matrices[key])
            else:
                prefix, name = key.split("_", 1)
                getattr(self, prefix).load(name, value)
        self.cross, *self.null_cross = matrices.values()  # in order: cross, null_cross_1, ...
        self.n_images = int(state["n_images"])
