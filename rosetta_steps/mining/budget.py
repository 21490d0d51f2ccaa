"""A match or reduce job's memory: what it holds besides its correlation states, and so what
share of the job's budget (`mem_mb`, the memory Snakemake and a cluster reserve for the job)
the states may take (`blocks` cuts them into row blocks of that size).

Besides the states of Eq. 1-2 (float64; the null permutations' cross products float32), a
match job holds the process itself (Python, torch, zarr), the models' weights, one batch's
maps of every model (and their forward passes' temporaries), the accumulators' per-batch
scratch (`Buffers`: each side's maps regrouped in the GEMMs' dtype, projected to the
partner's sizes, squared at upsampled sizes, copied to float32 for the null's GEMMs; one set
shared by the blocks of a pass, D's side a chunk of units at a time) and the rows the
writers hold until a shard file of a matrix is whole (`core.rowwise`). `scratch_bytes`
counts the buffers exactly as the accumulator asks for them (tested); the rest are upper
bounds measured on CPU (bench/bench_mining.py checks the job's peak against the budget). A
pass's scratch depends on its blocks and the chunk, and its blocks on the share of the
states, so `fit_passes` looks for the largest share whose every pass fits, and for the
chunk that needs the fewest passes. A reduce job holds the process, the writers' rows and
its states (`reduction.COPIES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from ..core.cli import UserError
from ..core.stores import CHUNK_ROWS, matrix_encoding
from ..core.units import LayerSpec, unit_count
from .blocks import plan_passes, row_bytes
from .correlation import NULL
from .sums import STATE

MB = 2**20
PROCESS_MB = 700  # Python with torch, zarr and xarray imported: 559 MB resident on CPU
WEIGHTS = 1.5  # resident bytes per byte of a loaded model's tensors (measured 1.46)
FORWARD = 2.5  # a forward pass's peak per byte of its hooked maps (BigGAN-deep-256: 2.2)
NULL_BYTES = NULL.itemsize  # the null's GEMMs and sums (`correlation.NULL`)
# D units an accumulator may take at a time (`CorrelationAccumulator(chunk=)`), all first
CHUNKS = (None, 8192, 4096, 2048, 1024, 512)


def _sizes(specs: Sequence[LayerSpec]) -> tuple[tuple[int, int], ...]:
    """Units per map size: (size, units) by size."""
    out: dict[int, int] = {}
    for s in specs:
        out[s.size] = out.get(s.size, 0) + s.channels
    return tuple(sorted(out.items()))


class _Rows:
    """Units per map size of any run of G's units, from running counts per size (a plan of
    thousands of row blocks is costed in a moment)."""

    def __init__(self, specs: Sequence[LayerSpec]):
        sizes = np.repeat([s.size for s in specs], [s.channels for s in specs])
        self.counts = {int(s): np.concatenate([[0], np.cumsum(sizes == s)]).tolist()
                       for s in np.unique(sizes)}

    def sizes(self, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
        return tuple((s, c[hi] - c[lo]) for s, c in self.counts.items() if c[hi] > c[lo])


def map_bytes(specs: Sequence[LayerSpec], batch: int, itemsize: int = 4) -> int:
    """Bytes of a batch's maps of layers `specs`."""
    return batch * itemsize * sum(s.channels * s.size**2 for s in specs)


@lru_cache(maxsize=65536)
def _roles(g: tuple[tuple[int, int], ...], disc: tuple[tuple[int, int], ...], batch: int,
           nulls: int, itemsize: int, chunk: int | None) -> dict[tuple, int]:
    """Bytes of each scratch role an accumulator of G units `g` against `disc` (units per
    size, `_sizes`) asks for in an update (`CorrelationAccumulator.update`, `Side.group`,
    `Side.add_sums`), D's side `chunk` units at a time."""
    roles: dict[tuple, int] = {}

    def ask(role: tuple, numel: int, size: int = itemsize) -> None:
        roles[role] = max(roles.get(role, 0), numel * size)

    d = tuple((s, min(units, chunk or units)) for s, units in disc)  # D's chunks
    for name, mine, theirs in (("gan", g, d), ("disc", d, g)):
        for s, units in mine:
            ask((name, "group", s), units * batch * s * s)
            if any(p > s for p, _ in theirs):
                ask(("gram",), units * batch * s * s)
                ask(("gram_out",), units * batch * s * s)
                ask(("map_sums",), units * s * s)
            for p, _ in theirs:
                if s > p:
                    ask(("half",), units * batch * p * s)
                    ask((name, "down", s, p), units * batch * p * p)
    for a, rows in g:
        for b, cols in d:
            if itemsize < 8:  # the cross products' GEMM output, added to the float64 state
                ask(("cross",), rows * cols)
                ask(("sum",), rows * cols, 8)  # the GEMM's output in float64, then added
            if nulls:  # the null's float32 GEMM adds into its state; its inputs (D's rolled)
                pixels = batch * min(a, b) ** 2
                ask(("null", "disc"), cols * pixels, NULL_BYTES)
                if itemsize != NULL_BYTES:
                    ask(("null", "gan"), rows * pixels, NULL_BYTES)
    return roles


def _shared(roles: Iterable[dict[tuple, int]]) -> int:
    """Bytes of one `Buffers` that serves accumulators asking for `roles` in turn (a role
    grows to the largest any of them asks)."""
    shared: dict[tuple, int] = {}
    for r in roles:
        for role, size in r.items():
            shared[role] = max(shared.get(role, 0), size)
    return sum(shared.values())


def scratch_bytes(blocks: Iterable[tuple[Sequence[LayerSpec], Sequence[LayerSpec]]],
                  batch: int, nulls: int = 0, itemsize: int = 8, chunk: int | None = None
                  ) -> int:
    """Bytes of the scratch that accumulators of the given (G layers, partner layers) hold
    when they share one `Buffers`, D's side `chunk` units at a time."""
    return _shared(_roles(_sizes(gan), _sizes(disc), batch, nulls, itemsize, chunk)
                   for gan, disc in blocks)


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
    temporaries, and the writers' rows (and the chunk of rows a writer copies from a state
    into the given unit order where the orders differ, `state.StateWriter.add`)."""
    forward = FORWARD * (map_bytes(gan, batch) + sum(map_bytes(d, batch) for d in discs))
    held = held_bytes([(unit_count(gan), unit_count(p), size) for p in partners
                       for size in (STATE.itemsize, *[NULL_BYTES] * nulls)], 1 + nulls)
    gather = CHUNK_ROWS * max((unit_count(p) for p in partners), default=0) * STATE.itemsize
    return PROCESS_MB * MB + WEIGHTS * weights + forward + held + gather


def pass_bytes(gan: Sequence[LayerSpec], partners: Sequence[Sequence[LayerSpec]],
               blocks: Sequence[tuple[int, int, int]], batch: int, nulls: int,
               chunk: int | None = None) -> float:
    """Bytes of one pass's blocks (partner, first G row, last + 1): their states as
    `blocks.plan_passes` counts them, and the scratch they share (D's side `chunk` units at
    a time)."""
    return _pass_bytes(_Rows(gan), [_sizes(p) for p in partners], blocks, batch, nulls, chunk)


def _pass_bytes(rows: _Rows, partners: Sequence[tuple], blocks: Sequence[tuple[int, int, int]],
                batch: int, nulls: int, chunk: int | None) -> float:
    """`pass_bytes` of partners given by their units per size."""
    states = sum((hi - lo) * row_bytes(sum(n for _, n in partners[i]), nulls)
                 for i, lo, hi in blocks)
    return states + _shared(_roles(rows.sizes(lo, hi), partners[i], batch, nulls, 8, chunk)
                            for i, lo, hi in blocks)


class Plan(NamedTuple):
    """A match job's passes of G (each a list of blocks: partner, first G row, last + 1) and
    the D units its accumulators take at a time (None: all)."""

    passes: list[list[tuple[int, int, int]]]
    chunk: int | None


def _fit_share(room: float, gan: Sequence[LayerSpec], partners: Sequence[Sequence[LayerSpec]],
               batch: int, nulls: int, chunk: int | None, most: float = float("inf")
               ) -> list | None:
    """The passes of the largest share of `room` for the states whose every pass, its states
    and its scratch, fits `room` (found by bisection); None when none does, or when it takes
    more than `most` passes."""
    sizes = [_sizes(p) for p in partners]
    # every pass holds a chunk of a whole partner's regrouped maps, whatever its G rows: no
    # plan fits a room smaller than that (and bisecting for one is slow)
    if room < max(_shared([_roles((), p, batch, 0, 8, chunk)]) for p in sizes):
        return None
    rows, cols = _Rows(gan), [unit_count(p) for p in partners]
    low, high, found = 0.0, room / MB, None
    for _ in range(20):  # to a millionth of the room
        share = (low + high) / 2
        try:
            passes = plan_passes(gan, cols, nulls, share)
        except UserError:  # not even a row of a state fits this share
            low = share
            continue
        if len(passes) > most:  # a plan of `most` passes needs a larger share, if any fits
            low = share
        elif all(_pass_bytes(rows, sizes, p, batch, nulls, chunk) <= room for p in passes):
            low, found = share, passes
        else:
            high = share
    return found


def fit_passes(mem_mb: float, gan: Sequence[LayerSpec], discs: Sequence[Sequence[LayerSpec]],
               partners: Sequence[Sequence[LayerSpec]], weights: int, batch: int, nulls: int
               ) -> Plan:
    """The plan of a match job whose every pass of G (`blocks.plan_passes`) fits, states and
    scratch, in what `match_fixed` leaves of `mem_mb`: the fewest passes of any D chunk in
    CHUNKS, and of those the largest chunk (a chunk changes the GEMMs' last bits). One line
    naming the largest batch size that fits when none does."""

    def fitted(b: int) -> Plan | None:
        room = mem_mb * MB - match_fixed(gan, discs, partners, weights, b, nulls)
        # the smallest chunk leaves the states the most room, so it needs the fewest passes
        fewest = _fit_share(room, gan, partners, b, nulls, CHUNKS[-1])
        if fewest is None:
            return None
        for chunk in CHUNKS[:-1]:
            passes = _fit_share(room, gan, partners, b, nulls, chunk, len(fewest))
            if passes is not None:
                return Plan(passes, chunk)
        return Plan(fewest, CHUNKS[-1])

    plan = fitted(batch)
    if plan is not None:
        return plan
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


def one_pass_mb(gan: Sequence[LayerSpec], discs: Sequence[Sequence[LayerSpec]],
                partners: Sequence[Sequence[LayerSpec]], weights: int, batch: int,
                nulls: int) -> float:
    """The least `mem_mb` that `fit_passes` plans in one pass of G: what `match_fixed`
    counts, every pair's whole state and their scratch, D's side in the smallest chunk."""
    whole = [(i, 0, unit_count(gan)) for i in range(len(partners))]
    return (match_fixed(gan, discs, partners, weights, batch, nulls)
            + pass_bytes(gan, partners, whole, batch, nulls, CHUNKS[-1])) / MB


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
