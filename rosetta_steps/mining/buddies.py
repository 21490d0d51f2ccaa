"""Best-buddy pairs: mutual K nearest neighbours by correlation (paper, Eq. 3).

(j, k) is a best-buddy pair iff k is among the K D units most correlated with G unit j and j
is among the K G units most correlated with D unit k ("mutual" rule, Eq. 3). The original
code's variant ("original" rule) keeps (j, k) iff k is j's single most correlated D unit and
j is among k's K most correlated G units; it yields at most one partner per G unit.

Top-K lists in both directions are gathered in one pass over row blocks of the match store,
so a large matrix is never held whole. Self matches (G against G) exclude the trivial pairs.
Given null match stores of the pair (`null`), each pair also gets its q value, and the null
best buddies are listed too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.cli import UserError
from ..core.stores import layer_names, open_match_store, read_table, row_blocks
from .null import q_values

RULES = ("mutual", "original")
COLUMNS = ["gan", "gan_layer", "gan_channel", "disc", "disc_layer", "disc_channel", "corr"]
NULL_COLUMNS = ["null", *COLUMNS]  # the null best buddies, with their permutation


def check_k(k: int, n_rows: int, n_cols: int, exclude_diagonal: bool = False) -> None:
    """Raise ValueError unless 1 <= k <= the number of candidates on each side."""
    limit = min(n_rows, n_cols) - (1 if exclude_diagonal else 0)
    if k < 1:
        raise ValueError(f"K must be at least 1, got {k}")
    if k > limit:
        note = ", self pairs excluded" if exclude_diagonal else ""
        raise ValueError(f"K={k} is larger than the {limit} candidate units of the smaller side "
                         f"({n_rows} x {n_cols} units{note})")


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown best-buddy rule {rule!r}: use one of {', '.join(RULES)}")


def streaming_topk(blocks: Iterable[tuple[int, np.ndarray | torch.Tensor]], k_rows: int,
                   k_cols: int, exclude_diagonal: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-K along both axes from row blocks (first row, block).

    Returns (row_idx [rows, k_rows], row_val [rows, k_rows], col_idx [k_cols, cols]): each row's
    k_rows best columns with their values, and each column's k_cols best rows.
    """
    row_idx, row_val = [], []
    col_val = col_idx = None
    for start, block in blocks:
        b = torch.as_tensor(block)
        if exclude_diagonal:
            b = b.clone()
            i = torch.arange(b.shape[0])
            inside = start + i < b.shape[1]
            b[i[inside], start + i[inside]] = -torch.inf
        v, ix = b.topk(k_rows, dim=1)
        row_idx.append(ix)
        row_val.append(v)
        cv, ci = b.topk(min(k_cols, b.shape[0]), dim=0)
        if col_val is not None:
            cv, ci = torch.cat([col_val, cv]), torch.cat([col_idx, ci + start])
            top = cv.topk(min(k_cols, cv.shape[0]), dim=0)
            col_val, col_idx = top.values, ci.gather(0, top.indices)
        else:
            col_val, col_idx = cv, ci + start
    return torch.cat(row_idx), torch.cat(row_val), col_idx


def _buddies(row_idx: torch.Tensor, col_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (j, r) of row_idx whose column k = row_idx[j, r] lists j among its top rows."""
    n_rows, k_rows = row_idx.shape
    j = torch.arange(n_rows).repeat_interleave(k_rows)
    keep = (col_idx[:, row_idx.flatten()] == j).any(dim=0)
    return j[keep], torch.arange(k_rows).repeat(n_rows)[keep]


def buddy_pairs(blocks: Iterable[tuple[int, np.ndarray | torch.Tensor]], k: int,
                rule: str = "mutual", exclude_diagonal: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best-buddy pairs (gan units, disc units, correlations) from row blocks of a matrix."""
    check_rule(rule)
    row_idx, row_val, col_idx = streaming_topk(blocks, 1 if rule == "original" else k, k,
                                               exclude_diagonal)
    j, r = _buddies(row_idx, col_idx)
    return j, row_idx[j, r], row_val[j, r]


def best_buddies(corr: torch.Tensor | np.ndarray, k: int = 5, rule: str = "mutual",
                 exclude_diagonal: bool = False) -> list[tuple[int, int]]:
    """Best-buddy (gan_unit, disc_unit) pairs of a correlation matrix [n_gan, n_disc] (Eq. 3)."""
    corr = torch.as_tensor(corr)
    if not torch.isfinite(corr).all():
        raise ValueError("corr has non-finite values: torch's top-k would rank a NaN first")
    check_k(k, *corr.shape, exclude_diagonal)
    j, kk, _ = buddy_pairs([(0, corr)], k, rule, exclude_diagonal)
    return sorted(zip(j.tolist(), kk.tolist(), strict=True))


def best_buddy_table(path: str, k: int, rule: str = "mutual") -> pd.DataFrame:
    """The best-buddy pairs of a match store as a table (COLUMNS), most correlated first."""
    ds = open_match_store(path)
    n_gan, n_disc = ds.sizes["gan_unit"], ds.sizes["disc_unit"]
    try:
        check_rule(rule)
        check_k(k, n_gan, n_disc)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    return _table(ds, path, k, rule)


def _table(ds, path: str, k: int, rule: str) -> pd.DataFrame:
    j, kk, corr = buddy_pairs(row_blocks(ds["corr"], path), k, rule)
    table = pd.DataFrame({
        "gan": ds.attrs["gan"],
        "gan_layer": layer_names(ds, "gan")[j.numpy()],
        "gan_channel": ds["gan_channel"].values[j.numpy()],
        "disc": ds.attrs["disc"],
        "disc_layer": layer_names(ds, "disc")[kk.numpy()],
        "disc_channel": ds["disc_channel"].values[kk.numpy()],
        "corr": corr.numpy(),
    }, columns=COLUMNS)
    order = np.lexsort((kk.numpy(), j.numpy(), -corr.numpy()))
    return table.iloc[order].reset_index(drop=True)


def open_null_store(null_path: str, observed, path: str):
    """The null match store at `null_path`, checked to be one of the pair whose observed
    store (`observed`, opened from `path`) reduce wrote beside it."""
    ds = open_match_store(null_path)
    same = {key: (ds.attrs.get(key), observed.attrs.get(key))
            for key in ("gan", "disc", "n_images", "gan_layers", "disc_layers")}
    differ = [key for key, (a, b) in same.items() if a != b]
    if ds.attrs.get("null") is None or differ:
        why = f"its {', '.join(differ)} differ" if differ else "it has no attr null"
        raise UserError(f"{null_path} is not a null match store of {path} ({why}): give "
                        "the null stores that reduce wrote beside it")
    return ds


def with_null(table: pd.DataFrame, path: str, nulls: Sequence[str], k: int, rule: str = "mutual"
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The observed table with its q column, and the null best buddies (NULL_COLUMNS), from
    the null match stores of the pair that the observed store at `path` holds."""
    observed = open_match_store(path)
    null_tables = []
    for r, null_path in enumerate(nulls, start=1):
        ds = open_null_store(null_path, observed, path)
        null_tables.append(_table(ds, null_path, k, rule).assign(null=r))
    q = q_values(table["corr"].to_numpy(), [t["corr"].to_numpy() for t in null_tables])
    return table.assign(q=q), pd.concat(null_tables, ignore_index=True)[NULL_COLUMNS]


def read_best_buddies(path: str | Path) -> pd.DataFrame:
    """A best-buddy CSV of one (G, D) pair (COLUMNS), as the bestbuddies step writes it."""
    table = read_table(path, "best-buddy table", "bestbuddies", COLUMNS,
                       {"gan_layer": str, "disc_layer": str})
    if table["disc"].nunique() > 1:
        raise UserError(f"best-buddy table {path} mixes D models: one table per (G, D) pair")
    return table


def read_null_best_buddies(path: str | Path) -> pd.DataFrame:
    """The null best buddies of one (G, D) pair (NULL_COLUMNS), as `bestbuddies --null-out`
    writes them."""
    return read_table(path, "null best-buddy table", "bestbuddies", NULL_COLUMNS,
                      {"gan_layer": str, "disc_layer": str})
