"""Stores whose large matrices are written row block by row block (`RowWiseStore`).

A (G unit x D unit) matrix of a correlation state or a match store can be larger than the
memory a job may use (BigGAN-deep-256 against itself: 4.3 GB per float64 matrix). Such a
matrix is created empty in the temporary store, filled one row block at a time, and the
store is renamed into place only when every block and the small variables are written, so
a reader sees the same complete, atomically written store as `stores.write_dataset` gives.
Rows that arrive in order are held until they fill a shard file of the matrix (at most
`stores.SHARD_BYTES`), so each shard file is written once, not rewritten per block.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import zarr

from .stores import atomic_output, matrix_encoding, seal, write_files

DIMS = ("gan_unit", "disc_unit")


class RowWiseStore:
    """A Zarr v3 store at `path` with `matrices` (name -> dtype) of shape (rows, cols) over
    dims (gan_unit, disc_unit), chunked in row blocks as `write_dataset` chunks its matrices.

        with RowWiseStore(path, rows, cols, {"cross": np.float64}) as store:
            store.write_rows("cross", 0, block)   # any number of blocks, any order
            store.finish(stores.encode(small), attrs)  # coords, small variables, attrs

    Leaving the block without `finish` (or with an exception) leaves nothing at `path`.
    """

    def __init__(self, path: str | Path, rows: int, cols: int,
                 matrices: Mapping[str, type | np.dtype]):
        self.path, self.shape, self.matrices = Path(path), (rows, cols), dict(matrices)
        self._stack = ExitStack()
        self._written = {name: 0 for name in self.matrices}
        self._finished = False

    def __enter__(self) -> RowWiseStore:
        self.tmp = self._stack.enter_context(atomic_output(self.path))
        group = zarr.open_group(str(self.tmp), mode="w", zarr_format=3)
        self._arrays, self._pending = {}, {}
        for name, dtype in self.matrices.items():
            encoding = matrix_encoding(*self.shape, np.dtype(dtype).itemsize)
            self._arrays[name] = group.create_array(
                name, shape=self.shape, dtype=dtype, chunks=encoding["chunks"],
                shards=encoding["shards"], compressors=encoding["compressors"],
                fill_value=np.nan, dimension_names=DIMS)
            self._pending[name] = (0, [])  # first row held, blocks held
        return self

    def write_rows(self, name: str, start: int, block: np.ndarray) -> None:
        """Rows start .. start+len(block)-1 of matrix `name`."""
        if block.shape[1:] != self.shape[1:] or start + len(block) > self.shape[0]:
            raise ValueError(f"{name}: block {block.shape} at row {start} does not fit "
                             f"{self.shape}")
        first, held = self._pending[name]
        if start != first + sum(len(b) for b in held):  # not the next rows: write what is held
            self._flush(name, self.shape[0])
            first, held = start, []
        held.append(np.asarray(block, dtype=self.matrices[name]))  # no copy if it is one
        self._pending[name] = (first, held)
        self._flush(name, first + sum(len(b) for b in held))
        first, held = self._pending[name]
        if held and np.may_share_memory(held[-1], block):  # rows kept past this call are
            held[-1] = held[-1].copy()  # a copy: the caller may reuse or free its block
        self._written[name] += len(block)

    def _flush(self, name: str, upto: int) -> None:
        """Write the held rows of `name` up to the last shard boundary at or before `upto`
        (all of them at the matrix's end)."""
        first, held = self._pending[name]
        stop = first + sum(len(b) for b in held)
        per_shard = self.shard_rows(name)
        cut = stop if upto >= self.shape[0] else min(stop, upto // per_shard * per_shard)
        if cut <= first:
            return
        # Held rows never span a shard file's end, so only the file they begin is joined
        # from the blocks: the last block's whole files are written from it, not copied.
        *before, last = held
        lead = stop - len(last)  # the last block's first row
        join = min(cut, -(-lead // per_shard) * per_shard) if before else first
        array = self._arrays[name]
        if join > first:
            array[first:join] = np.concatenate([*before, last[:join - lead]])
        if cut > join:
            array[join:cut] = last[join - lead:cut - lead]
        self._pending[name] = (cut, [last[cut - lead:]] if cut < stop else [])

    def shard_rows(self, name: str) -> int:
        """Rows of a shard file of matrix `name`: blocks of them are written without a copy."""
        return self._arrays[name].shards[0]

    def finish(self, small: dict[str, bytes], attrs: dict) -> None:
        """Write the coords and small variables `small` (`stores.encode`d) and the root
        `attrs`; every row of every matrix must have been written."""
        for name in self.matrices:
            self._flush(name, self.shape[0])
        short = {n: w for n, w in self._written.items() if w < self.shape[0]}
        if short:
            raise ValueError(f"rows not written: {short} of {self.shape[0]}")
        write_files(self.tmp, small)
        seal(self.tmp, attrs)
        self._finished = True

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None and not self._finished:
            error = RuntimeError(f"{self.path}: the store was left before finish()")
            self._stack.__exit__(RuntimeError, error, None)  # removes the temporary
            raise error
        return self._stack.__exit__(kind, value, traceback)


class RowWiseWriter:
    """The base of writers that fill a `RowWiseStore` (their `store`) block by block: a
    context manager around it."""

    store: RowWiseStore

    def __enter__(self):
        self.store.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        return self.store.__exit__(*exc)
