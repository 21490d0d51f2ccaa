"""A match or reduce job's memory: what it holds besides its correlation states, and so what
share of the job's budget (`mem_mb`, the memory Snakemake and a cluster reserve for the job)
the states may take (`blocks` cuts them into row blocks of that size).

Besides the float64 states of Eq. 1-2, a match job holds the process itself (Python, torch,
zarr), the models' weights, one batch's maps of every model (and their forward passes'
temporaries), the accumulators' per-batch scratch (`Buffers`: each side's maps regrouped in
the GEMMs' dtype, projected to the partner's sizes, squared at upsampled sizes; one set shared
by the blocks of a pass) and the rows the writers hold until a shard file of a matrix is
whole (`core.rowwise`). `scratch_bytes` counts the buffers exactly as the accumulator asks
for them (tested); the rest are upper bounds measured on CPU (bench/bench_mining.py checks
the job's peak against the budget). A pass's scratch depends on its blocks, and its blocks
on the share of the states, so `fit_passes` looks for the largest share whose every pass
fits. A reduce job holds the process, the writers' rows and its states
(`reduction.COPIES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..core.cli import UserError
from ..core.stores import matrix_encoding
from ..core.units import LayerSpec, unit_count
from .blocks import block_specs, plan_passes, row_bytes

MB = 2**20
PROCESS_MB = 700  # Python with torch, zarr and xarray imported: 559 MB resident on CPU
WEIGHTS = 1.5  # resident bytes per byte of a loaded model's tensors (measured 1.46)
FORWARD = 2.5  # a forward pass's peak per byte of its hooked maps (BigGAN-deep-256: 2.2)
NULL_GEMM_BYTES = 4  # the null's GEMMs run in float32 (`correlation.NULL_GEMM`)


def _sizes(specs: Sequence[LayerSpec]) -> dict[int, int]:
    """Units per map size."""
    out: dict[int, int] = {}
    for s in specs:
        out[s.size] = out.get(s.size, 0) + s.channels
    return out


def map_bytes(specs: Sequence[LayerSpec], batch: int, itemsize: int = 4) -> int:
    """Bytes of a batch's maps of layers `specs`."""
    return batch * itemsize * sum(s.channels * s.size**2 for s in specs)


def _roles(gan: Sequence[LayerSpec], disc: Sequence[LayerSpec], batch: int, nulls: int,
           itemsize: int) -> dict[tuple, int]:
    """Bytes of each scratch role an accumulator of G layers `gan` against `disc` asks for
    in an update (`CorrelationAccumulator.update`, `Side.grouped`, `Side.add_sums`)."""
    roles: dict[tuple, int] = {}

    def ask(role: tuple, numel: int, size: int = itemsize) -> None:
        roles[role] = max(roles.get(role, 0), numel * size)

    g, d = _sizes(gan), _sizes(disc)
    for name, mine, theirs in (("gan", g, d), ("disc", d, g)):
        for s, units in mine.items():
            ask((name, "group", s), units * batch * s * s)
            if any(p > s for p in theirs):
                ask(("gram",), units * batch * s * s)
                ask(("gram_out",), units * batch * s * s)
            for p in theirs:
                if s > p:
                    ask(("half",), units * batch * p * s)
                    ask((name, "down", s, p), units * batch * p * p)
    for rows in g.values():
        for cols in d.values():
            if nulls:
                ask(("null",), rows * cols, NULL_GEMM_BYTES)
            if itemsize < 8:  # the cross products' GEMM output, added to the float64 state
                ask(("cross",), rows * cols)
    return roles


def scratch_bytes(blocks: Iterable[tuple[Sequence[LayerSpec], Sequence[LayerSpec]]],
                  batch: int, nulls: int = 0, itemsize: int = 8) -> int:
    """Bytes of the scratch that accumulators of the given (G layers, partner layers) hold
    when they share one `Buffers` (a role grows to the largest any of them asks)."""
    shared: dict[tuple, int] = {}
    for gan, disc in blocks:
        for role, size in _roles(gan, disc, batch, nulls, itemsize).items():
            shared[role] = max(shared.get(role, 0), size)
    return sum(shared.values())


def _null_copies(gan: Sequence[LayerSpec], disc: Sequence[LayerSpec], batch: int) -> int:
    """The largest float32 copies of a pair of size groups made for the null's GEMMs
    (G's group, D's and D's rolled), which `Buffers` does not hold."""
    g, d = _sizes(gan), _sizes(disc)
    return max(NULL_GEMM_BYTES * batch * min(a, b) ** 2 * (rows + 2 * cols)
               for a, rows in g.items() for b, cols in d.items())


def held_bytes(matrices: Iterable[tuple[int, int, int]], at_once: int) -> int:
    """Bytes row-wise writers of matrices (rows, cols, itemsize) may hold: `at_once` of them
    (the largest) up to one shard file's rows each, and a shard file joined and encoded (x2).
    A match job's blocks come pair after pair (`blocks.plan_passes`), and a writer flushes
    every whole shard file as its rows arrive, so only one pair's matrices hold rows between
    passes; a reduce writes all of its pair's matrices together."""
    shards = sorted((min(rows, matrix_encoding(rows, cols, itemsize)["shards"][0])
                     * cols * itemsize for rows, cols, itemsize in matrices), reverse=True)
    return sum(shards[:at_once]) + 2 * (shards[0] if shards else 0)


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of a loaded model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def match_fixed(gan: Sequence[LayerSpec], discs: Sequence[Sequence[LayerSpec]],
                partners: Sequence[Sequence[LayerSpec]], weights: int, batch: int,
                nulls: int) -> float:
    """Bytes a match job holds whatever its passes: the process, `weights` bytes of models,
    one batch's maps of G and of each D run (layers `discs`) with the forward passes'
    temporaries, the null's copies (of the whole of G, a bound) and the writers' rows."""
    forward = FORWARD * (map_bytes(gan, batch) + sum(map_bytes(d, batch) for d in discs))
    copies = max((_null_copies(gan, p, batch) for p in partners), default=0) if nulls else 0
    held = held_bytes([(unit_count(gan), unit_count(p), 8) for p in partners
                       for _ in range(1 + nulls)], 1 + nulls)
    return PROCESS_MB * MB + WEIGHTS * weights + forward + copies + held


def pass_bytes(gan: Sequence[LayerSpec], partners: Sequence[Sequence[LayerSpec]],
               blocks: Sequence[tuple[int, int, int]], batch: int, nulls: int) -> float:
    """Bytes of one pass's blocks (partner, first G row, last + 1): their states as
    `blocks.plan_passes` counts them, and the scratch they share."""
    states = sum((hi - lo) * row_bytes(unit_count(partners[i]), nulls) for i, lo, hi in blocks)
    specs = [([s for s, _, _ in block_specs(gan, lo, hi)], partners[i]) for i, lo, hi in blocks]
    return states + scratch_bytes(specs, batch, nulls)


def fit_passes(mem_mb: float, gan: Sequence[LayerSpec], discs: Sequence[Sequence[LayerSpec]],
               partners: Sequence[Sequence[LayerSpec]], weights: int, batch: int, nulls: int
               ) -> list[list[tuple[int, int, int]]]:
    """The passes of G (`blocks.plan_passes`) of a match job, each of whose states and
    scratch fit in what `match_fixed` leaves of `mem_mb`: the plan of the largest share of
    the states that does, found by bisection. One line naming the largest batch size that
    fits when none does."""
    cols = [unit_count(p) for p in partners]

    def fitted(b: int) -> list | None:
        room = mem_mb * MB - match_fixed(gan, discs, partners, weights, b, nulls)
        # every pass holds a whole partner's regrouped maps, whatever its G rows: no plan
        # fits a room smaller than the largest of them (and bisecting for one is slow)
        if room < max(scratch_bytes([((), p)], b) for p in partners):
            return None
        low, high, found = 0.0, room / MB, None
        for _ in range(20):  # to a millionth of the room
            share = (low + high) / 2
            try:
                passes = plan_passes(gan, cols, nulls, share)
            except UserError:  # not even a row of a state fits this share
                low = share
                continue
            if max((pass_bytes(gan, partners, p, b, nulls) for p in passes), default=0) <= room:
                low, found = share, passes
            else:
                high = share
        return found

    passes = fitted(batch)
    if passes is not None:
        return passes
    fits, low, high = None, 1, batch - 1  # a smaller batch needs less: bisect for the largest
    while low <= high:
        b = (low + high) // 2
        if fitted(b) is None:
            high = b - 1
        else:
            fits, low = b, b + 1
    fixed = match_fixed(gan, discs, partners, weights, batch, nulls) / MB
    raise UserError(f"mem_mb {mem_mb:g} holds no pass of the correlation states: the process, "
                    f"the models and a batch of {batch} image(s) take about {fixed:,.0f} MB "
                    "before the states and their scratch; "
                    + (f"lower batch_size to {fits} or raise mem_mb" if fits else "raise mem_mb"))


def reduce_overhead(rows: int, cols: int, nulls: int) -> float:
    """Bytes a reduce job holds besides its states: the process and the match writers' rows
    (one float32 matrix per permutation and the observed one)."""
    return PROCESS_MB * MB + held_bytes([(rows, cols, 4)] * (1 + nulls), 1 + nulls)


def state_share(mem_mb: float, overhead: float) -> float:
    """MB of `mem_mb` left to the correlation states after `overhead` bytes; one line when
    nothing is left."""
    if mem_mb > overhead / MB:
        return mem_mb - overhead / MB
    raise UserError(f"mem_mb {mem_mb:g} leaves nothing for the correlation states: the process "
                    f"and the writers take about {overhead / MB:,.0f} MB; raise mem_mb")
