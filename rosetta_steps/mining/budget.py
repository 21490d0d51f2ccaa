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
the job's peak against the budget). A reduce job holds the process, the writers' rows and
its states (`reduction.COPIES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from ..core.cli import UserError
from ..core.stores import matrix_encoding
from ..core.units import LayerSpec, unit_count

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


def match_overhead(gan: Sequence[LayerSpec], discs: Sequence[Sequence[LayerSpec]],
                   partners: Sequence[Sequence[LayerSpec]], weights: int, batch: int,
                   nulls: int) -> float:
    """Bytes a match job holds besides its states: the process, `weights` bytes of models,
    one batch's maps of G and of each D run (layers `discs`) with the forward passes'
    temporaries, the scratch of accumulators over the whole of G against each partner (an
    upper bound of any row block's), the null's copies and the writers' held rows."""
    forward = FORWARD * (map_bytes(gan, batch) + sum(map_bytes(d, batch) for d in discs))
    scratch = scratch_bytes([(gan, p) for p in partners], batch, nulls)
    copies = max((_null_copies(gan, p, batch) for p in partners), default=0) if nulls else 0
    held = held_bytes([(unit_count(gan), unit_count(p), 8) for p in partners
                       for _ in range(1 + nulls)], 1 + nulls)
    return PROCESS_MB * MB + WEIGHTS * weights + forward + scratch + copies + held


def reduce_overhead(rows: int, cols: int, nulls: int) -> float:
    """Bytes a reduce job holds besides its states: the process and the match writers' rows
    (one float32 matrix per permutation and the observed one)."""
    return PROCESS_MB * MB + held_bytes([(rows, cols, 4)] * (1 + nulls), 1 + nulls)


def state_share(mem_mb: float, overhead: Callable[[int], float], batch: int | None = None
                ) -> float:
    """MB of `mem_mb` left to the correlation states after a job's `overhead(batch)` bytes;
    one line when nothing is left, naming the largest batch size that leaves some."""
    used = overhead(batch or 1) / MB
    if mem_mb > used:
        return mem_mb - used
    what = "the process and the writers"
    fix = "raise mem_mb"
    if batch is not None:
        what = f"the process, the models and a batch of {batch} image(s)"
        fits = [b for b in range(1, batch) if overhead(b) / MB < mem_mb]
        fix = f"lower batch_size to {fits[-1]} or raise mem_mb" if fits else fix
    raise UserError(f"mem_mb {mem_mb:g} leaves nothing for the correlation states: {what} "
                    f"take about {used:,.0f} MB; {fix}")
