"""Zarr stores of the pipeline (xarray datasets), written atomically and opened with checks.

Every store this package writes has the attrs `kind` and `files` (its files and sizes,
written just before the rename and checked by `open_store`); a reader needs neither. The
match store (`open_match_store`; written by `mining.reduction.MatchWriter`) has variable
`corr` (gan_unit, disc_unit) with coords gan_layer/gan_channel/gan_size and
disc_layer/disc_channel/disc_size, per-unit mean and std at native resolution (Eq. 1), attrs
gan, disc, n_images. A self-match store has the same layout with the generator on both
sides. The correlation state of one shard lives in `mining.state`, next to the accumulator
it stores.

Large matrices are chunked in row blocks (read one block at a time to answer a top-K) and
grouped into shard files of whole rows, so a store is a few files per 4096 rows (or per
256 MB) whatever its size; `rowwise` writes them one block of rows at a time.
The steps' small tables are CSV files (`read_table`).
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec
from zarr.storage import MemoryStore

from .cli import UserError
from .units import LayerSpec, Unit

CHUNK_ROWS, CHUNK_COLS, SHARD_ROWS, SHARD_BYTES = 512, 4096, 4096, 256 * 2**20
# A matrix's chunks: LZ4 on byte-shuffled values. Sums and correlations have random low
# mantissa bytes, so no codec saves much; this one saves what zstd does (the exponents, the
# padding at a wide matrix's edge) at 2x its write and read speed (bench/bench_stores.py).
MATRIX_CODECS = (BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),)
FILES = "files"  # the attr listing a store's files and sizes, written just before the rename


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `path`, on failure it vanishes.

    The temporary is named after this host and process, so that the next writer of `path`
    removes what a killed one left (`_remove_stale`); a full disk is one line, not a traceback.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        _replace(path, tmp)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise UserError(f"no space left on the device writing {path}: free some and rerun "
                        "(nothing was written)") from None
    finally:
        _remove(tmp)


def _replace(path: Path, tmp: Path) -> None:
    """Put the finished `tmp` at `path`. A file replaces atomically, so the later writer
    wins; a directory cannot, so when another run puts its own there between our two renames,
    that complete output stands and this writer refuses in one line."""
    old = path.with_name(f".{path.name}.old-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        if path.is_dir():
            path.rename(old)
        tmp.rename(path)
    except OSError as err:
        if not tmp.exists() or err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT,
                                                 errno.EISDIR):
            raise
        raise UserError(f"another run wrote {path} at the same time: its complete output "
                        "stands; rerun this step if it should be this one's") from None
    finally:
        _remove(old)


_HOST = socket.gethostname().replace("-", "_")


def _remove_stale(path: Path) -> None:
    """Remove temporaries of `path` left by a killed writer: those of this host whose process
    is gone (a live writer's, or another host's, are left alone)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*-{_HOST}-*-*"):
        pid = stale.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def write_text(path: str | Path, text: str) -> None:
    """A text file (a page, a table, JSON), written atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path, what: str) -> dict:
    """A JSON object a step wrote, with a one-line error for a missing or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist: run the step that makes it first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} holds a JSON {type(data).__name__}, not an object")
    return data


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def matrix_encoding(n_rows: int, n_cols: int, itemsize: int = 8) -> dict:
    """Chunks of up to CHUNK_ROWS x CHUNK_COLS, grouped into shard files of whole rows: up to
    SHARD_ROWS of them, fewer for wide matrices so that a shard stays under SHARD_BYTES (a
    writer holds one shard's rows at a time; `rowwise`), compressed by MATRIX_CODECS."""
    rows, cols = min(n_rows, CHUNK_ROWS), min(n_cols, CHUNK_COLS)
    shard_cols = -(-n_cols // cols) * cols
    per_shard = max(1, min(SHARD_ROWS // rows, SHARD_BYTES // (rows * shard_cols * itemsize)))
    return {"chunks": (rows, cols), "shards": (min(-(-n_rows // rows), per_shard) * rows,
                                               shard_cols), "compressors": MATRIX_CODECS}


def write_dataset(ds: xr.Dataset, path: str | Path, matrices: tuple[str, ...] = (),
                  encoding: dict | None = None) -> None:
    """Write `ds` as a Zarr v3 store at `path`, atomically; `matrices` get row-block chunks,
    other variables the given `encoding` (xarray's to_zarr encoding) or xarray's default."""
    encoding = {**(encoding or {}), **{
        name: matrix_encoding(*ds[name].shape, ds[name].dtype.itemsize) for name in matrices}}
    with atomic_output(path) as tmp:
        write_files(tmp, encode(ds, encoding))
        seal(tmp)


def encode(ds: xr.Dataset, encoding: dict | None = None) -> dict[str, bytes]:
    """The files of the in-memory `ds` as a Zarr v3 store (path in the store -> bytes), as
    xarray writes them. Encoded in memory and written at once (`write_files`): through zarr
    to disk, each variable took some ten metadata round trips to zarr's I/O threads, 15-25 ms
    here, most of `reduce` for the shapes zoo's small stores (profiled)."""
    memory: dict = {}
    ds.to_zarr(MemoryStore(memory), mode="w", zarr_format=3, consolidated=False,
               encoding=encoding)
    return {key: value.to_bytes() for key, value in memory.items()}


def write_files(store: Path, files: dict[str, bytes]) -> None:
    """Write `encode`'s files into the directory `store`; arrays already there (a `rowwise`
    store's matrices) stay."""
    for key, data in files.items():
        file = store / key
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)


def seal(store: Path, attrs: dict | None = None) -> None:
    """Add `attrs` to a finished store's root attrs and list its files there (`FILES`,
    checked by `open_store`): the last write before the rename. One metadata write: zarr's
    `attrs.update` rewrites the metadata once per key (25-30 ms a store here)."""
    group = zarr.open_group(str(store), mode="r+", zarr_format=3)
    group.update_attributes({**(attrs or {}), FILES: file_sizes(store)})


def file_sizes(store: Path) -> dict[str, int]:
    """Every file of a store but its root metadata (which holds this list), with its size."""
    return {str(p.relative_to(store)): p.stat().st_size for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp" and p != store / "zarr.json"}


def _check_files(path: Path, files: dict, what: str) -> None:
    """A store is complete or refused: every file written is there, at its size."""
    for name, size in files.items():
        f = path / name
        found = f.stat().st_size if f.is_file() else None
        if found != size:
            state = "missing" if found is None else f"{found} bytes, not {size}"
            raise UserError(f"{what} {path} is incomplete: {name} (array {name.split('/')[0]}) "
                            f"is {state}; delete it and rerun the step that makes it")


def open_store(path: str | Path, kind: str, what: str = "store") -> xr.Dataset:
    """Open a store, checking that it is complete (when it lists its files, as every store this
    package writes does) and of the expected kind (when it names one)."""
    path = _existing(path, what)
    try:
        with warnings.catch_warnings():  # Snakemake's marker file in a directory output
            warnings.filterwarnings("ignore", message=".*snakemake_timestamp")
            ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    except Exception as err:  # zarr raises many types for a damaged store
        raise _unreadable(path, what, err) from None
    _check_store(path, ds.attrs, kind, what)
    return ds


def store_attrs(path: str | Path, kind: str, what: str = "store") -> dict:
    """The attrs of a store, checked as `open_store` checks it, read from its root metadata
    alone: its arrays are not opened (1 ms, where xarray takes 40-60 ms for a state)."""
    path = _existing(path, what)
    try:
        attrs = dict(zarr.open_group(str(path), mode="r", zarr_format=3).attrs)
    except Exception as err:
        raise _unreadable(path, what, err) from None
    _check_store(path, attrs, kind, what)
    return attrs


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist: run the step that makes it first")
    return path


def _unreadable(path: Path, what: str, err: Exception) -> UserError:
    return UserError(f"{what} {path} is not a readable Zarr store ({type(err).__name__}): "
                     "delete it and rerun the step that makes it")


def _check_store(path: Path, attrs: dict, kind: str, what: str) -> None:
    if not isinstance(attrs.get(FILES, {}), dict):
        raise UserError(f"{what} {path}: attr {FILES} is not a file list")
    _check_files(path, attrs.get(FILES, {}), what)
    if attrs.get("kind", kind) != kind:
        raise UserError(f"{what} {path} is not a {kind} store (kind={attrs.get('kind')!r})")


def unit_coords(prefix: str, specs: list[LayerSpec]) -> dict:
    dim = f"{prefix}_unit"
    return {
        f"{prefix}_layer": (dim, np.array([s.name for s in specs for _ in range(s.channels)],
                                          dtype=object)),
        f"{prefix}_channel": (dim, np.concatenate([np.arange(s.channels) for s in specs])),
        f"{prefix}_size": (dim, np.concatenate([np.full(s.channels, s.size) for s in specs])),
    }


def open_match_store(path: str | Path) -> xr.Dataset:
    """Open a match store and check its layout."""
    ds = open_store(path, "matches", "match store")
    corr = ds.get("corr")
    if corr is None or corr.dims != ("gan_unit", "disc_unit"):
        dims = None if corr is None else corr.dims
        raise UserError(f"match store {path}: expected variable corr with dims "
                        f"(gan_unit, disc_unit), found {dims}")
    for name in ("gan_layer", "gan_channel", "disc_layer", "disc_channel"):
        if name not in ds.coords:
            raise UserError(f"match store {path}: coordinate {name} is missing")
    return ds


def row_blocks(corr: xr.DataArray, source: str | Path, rows: int = CHUNK_ROWS * 4
               ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, block) of a 2-D store variable, reading one row block at a time; a
    non-finite value (a NaN where a chunk is missing, or from a broken run) is a user error
    naming the store `source`, so that it never reaches a best-buddy list or a page."""
    for start in range(0, corr.shape[0], rows):
        block = np.asarray(corr[start:start + rows].values)
        finite = np.isfinite(block)
        if not finite.all():
            bad = np.argwhere(~finite)
            row, col = bad[0]
            raise UserError(f"{source}: {corr.name} is not finite at ({start + row}, {col}) "
                            f"({len(bad)} values in rows {start}..{start + len(block) - 1}): "
                            "the store is damaged; delete it and rerun the step that makes it")
        yield start, block


def layer_names(ds: xr.Dataset, side: str) -> np.ndarray:
    """Per-unit layer names of one side ('gan' or 'disc') as an object array of str."""
    return np.array(ds[f"{side}_layer"].values.tolist(), dtype=object)


def unit_stats(ds: xr.Dataset, side: str, model: str) -> dict[Unit, tuple[float, float]]:
    """Per-unit (mean, std) of one side ('gan' or 'disc') of a match store."""
    layers, channels = layer_names(ds, side), ds[f"{side}_channel"].values
    mean, std = ds[f"{side}_mean"].values, ds[f"{side}_std"].values
    return {Unit(model, str(la), int(c)): (float(m), float(s))
            for la, c, m, s in zip(layers, channels, mean, std, strict=True)}


def read_table(path: str | Path, what: str, step: str, columns: Sequence[str],
               dtype: dict[str, type]) -> pd.DataFrame:
    """A CSV table that `step` wrote, with one-line errors for a missing or unreadable file
    or one without the expected `columns`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist: run the {step} step first")
    try:
        table = pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is not a readable CSV ({err})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{what} {path} lacks columns {', '.join(missing)}")
    return table
