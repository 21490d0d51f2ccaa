"""Rosetta units and concepts: merge best buddies across D models (paper, Eq. 4), then cluster.

Rosetta units R(G, D_1..D_m) are the G units that have a best buddy in every D_i, each with its
partner in every D_i (the most correlated one when it has several). Rosetta units whose G units
are self best buddies, BB(G, G; K) with the trivial pairs (j, j) excluded, share a concept:
concepts are the connected components of that graph, numbered 1, 2, ... from the largest.
With a false discovery rate level (`fdr`), G-D pairs whose q value exceeds it are dropped
before the merge, and so are self best buddies when G's null self-match stores are given:
chance self best buddies would chain unrelated Rosetta units into one concept. A self pair's
q value comes from the null self stores as a G-D pair's does from its own (`null`), with the
trivial pairs excluded from the null as from the observed pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..core.cli import UserError
from ..core.stores import layer_names, open_match_store, read_table, row_blocks
from .buddies import buddy_pairs, check_k, open_null_store, read_best_buddies
from .null import q_values

CONCEPT_COLUMNS = ["concept", "model", "layer", "channel", "role", "corr"]


def rosetta_units(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Eq. 4: one row per (G unit, D model) for the G units with best buddies in every D.

    Columns: gan_layer, gan_channel, disc, disc_layer, disc_channel, corr.
    """
    key = ["gan_layer", "gan_channel"]
    partners = [t.sort_values("corr", ascending=False, kind="stable").drop_duplicates(key)
                for t in tables]
    common = partners[0][key]
    for p in partners[1:]:
        common = common.merge(p[key], on=key)
    merged = pd.concat([common.merge(p, on=key) for p in partners], ignore_index=True)
    return merged[["gan_layer", "gan_channel", "disc", "disc_layer", "disc_channel", "corr"]]


def cluster(units: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Concept number (1 = largest) of each unit: connected components of the pairs among units.

    Pairs with a unit outside `units` are ignored; ties in size go to the component holding
    the smallest unit index.
    """
    units = np.asarray(units, dtype=np.int64)
    if len(units) == 0:
        return np.zeros(0, dtype=int)
    a, b = (np.asarray(p, dtype=np.int64) for p in pairs)
    keep = np.isin(a, units) & np.isin(b, units)
    position = pd.Series(np.arange(len(units)), index=units)
    rows, cols = position[a[keep]].to_numpy(), position[b[keep]].to_numpy()
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(units), len(units)))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first = np.full(len(sizes), np.iinfo(np.int64).max)
    np.minimum.at(first, labels, units)
    number = np.empty(len(sizes), dtype=int)
    number[np.lexsort((first, -sizes))] = np.arange(1, len(sizes) + 1)
    return number[labels]


def _check_self_store(ds, path: str, tables: Sequence[pd.DataFrame], k: int) -> None:
    gan = ds.attrs["gan"]
    if ds.attrs.get("disc") != gan:
        raise UserError(f"{path} matches {gan} with {ds.attrs.get('disc')}: "
                        "a self-match store has the generator on both sides")
    for t in tables:
        if set(t["gan"]) - {gan}:
            raise UserError(f"best buddies of {sorted(set(t['gan']))} cannot be merged with "
                            f"the self matches of {gan}: use one generator throughout")
    try:
        check_k(k, ds.sizes["gan_unit"], ds.sizes["disc_unit"], exclude_diagonal=True)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None


def self_edges(ds, path: str, k: int, rule: str, nulls: Sequence[str] = (),
               fdr: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """G's self best buddies (unit pairs, the trivial ones excluded); with null self stores and
    `fdr`, only those whose q value is at most `fdr`."""
    j, jj, corr = buddy_pairs(row_blocks(ds["corr"], path), k, rule, exclude_diagonal=True)
    if not nulls:
        return j.numpy(), jj.numpy()
    null_corr = [buddy_pairs(row_blocks(open_null_store(p, ds, path)["corr"], p), k, rule,
                             exclude_diagonal=True)[2].numpy() for p in nulls]
    keep = q_values(corr.numpy(), null_corr) <= fdr
    return j.numpy()[keep], jj.numpy()[keep]


def concepts(tables: Sequence[pd.DataFrame], self_store: str, k: int, rule: str = "mutual",
             self_nulls: Sequence[str] = (), fdr: float | None = None) -> pd.DataFrame:
    """The long concept table (CONCEPT_COLUMNS): one row per member unit of each concept; with
    G's null self stores and `fdr`, self best buddies are cut at that false discovery rate.

    G rows carry the mean correlation with their partners, D rows the correlation with the
    G unit they partner (the highest, when they partner several in the concept).
    """
    ds = open_match_store(self_store)
    _check_self_store(ds, self_store, tables, k)
    key = ["gan_layer", "gan_channel"]
    store_units = pd.DataFrame({"gan_layer": layer_names(ds, "gan"),
                                "gan_channel": ds["gan_channel"].values,
                                "unit": np.arange(ds.sizes["gan_unit"])})
    units = rosetta_units(tables).merge(store_units, on=key, how="left")
    if units["unit"].isna().any():
        layer, channel = units.loc[units["unit"].isna(), key].iloc[0]
        raise UserError(f"G unit {layer}:{channel} of the best buddies is not in {self_store}: "
                        "were both mined from the same generator layers?")
    units["unit"] = units["unit"].astype(np.int64)
    members = units["unit"].unique()
    edges = self_edges(ds, self_store, k, rule, self_nulls, fdr)
    concept_of = pd.Series(cluster(members, edges), index=members)
    units["concept"] = concept_of[units["unit"]].to_numpy()
    units["order"] = units["disc"].map({d: i for i, d in enumerate(dict.fromkeys(units["disc"]))})

    gan_rows = units.groupby(["concept", "unit", *key], as_index=False)["corr"].mean()
    gan_rows = gan_rows.rename(columns={"gan_layer": "layer", "gan_channel": "channel"})
    gan_rows = gan_rows.assign(model=ds.attrs["gan"], role="gan")
    disc_rows = units.groupby(["concept", "order", "disc", "disc_layer", "disc_channel"],
                              as_index=False)["corr"].max()
    disc_rows = disc_rows.sort_values(["concept", "order", "corr"], ascending=[True, True, False])
    disc_rows = disc_rows.rename(columns={"disc": "model", "disc_layer": "layer",
                                          "disc_channel": "channel"}).assign(role="disc")
    out = pd.concat([gan_rows[CONCEPT_COLUMNS], disc_rows[CONCEPT_COLUMNS]], ignore_index=True)
    return out.sort_values("concept", kind="stable").reset_index(drop=True)


def read_concept_table(path: str | Path) -> pd.DataFrame:
    """The concept CSV this step writes (CONCEPT_COLUMNS)."""
    return read_table(path, "concept table", "rosetta", CONCEPT_COLUMNS,
                      {"layer": str, "model": str})


def concept_table(bestbuddies: Sequence[str | Path], self_matches: str | Path, k: int,
                  rule: str = "mutual", fdr: float | None = None,
                  self_nulls: Sequence[str | Path] = ()) -> pd.DataFrame:
    """`concepts` from best-buddy CSVs, one per D model, all with the same G; with `fdr`, only
    the pairs with q <= fdr, and only the self best buddies with q <= fdr when G's null self
    stores `self_nulls` are given."""
    if self_nulls and fdr is None:
        raise UserError("null self-match stores cut G's self best buddies at a false "
                        "discovery rate: give its level (--fdr)")
    tables = [read_best_buddies(p) for p in bestbuddies]
    if fdr is not None:
        for path, table in zip(bestbuddies, tables, strict=True):
            if "q" not in table.columns:
                raise UserError(f"best-buddy table {path} has no q column, so it cannot be cut "
                                "at a false discovery rate: make it with null stores (--null)")
        tables = [t[t["q"] <= fdr] for t in tables]
    discs = [t["disc"].iloc[0] for t in tables if len(t)]
    if len(set(discs)) != len(discs):
        raise UserError(f"the same D model appears twice among the best-buddy tables: {discs}")
    return concepts(tables, str(self_matches), k, rule, [str(p) for p in self_nulls], fdr)
