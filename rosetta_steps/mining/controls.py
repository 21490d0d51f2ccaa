"""How much of a (G, D) pair's match training made: D's best buddies against D's untrained
twins (`models.untrained`) and against the pixel control (`models.pixels`), per pair and per G
unit (issue 36).

For G unit g and a layer L of D, b_X(g, L) is g's best correlation (Eq. 2) with any unit of
layer L of network X (D, or twin t = 1..S, the same architecture at seeded random weights).
Correlations are compared on Fisher's z = atanh(r). For a best-buddy pair (g, d), d in
layer L, with correlation r:

- `r_twins` = mean over twins of b_t(g, L);
- `delta` = atanh(r) - mean over twins of atanh(b_t(g, L)): what training added;
- `p_learned`, `q_learned`: the test of "D's match exceeds what its untrained twins give".
  Its null distribution is the same statistic taken on the twins themselves: for each twin
  t and each of t's own best-buddy pairs (g', d') (so selected by the same rule as D's),
  atanh(r_t) minus the mean over the other S - 1 twins of atanh(b(g', layer of d')), scaled
  by sqrt((1 + 1/S) / (1 + 1/(S - 1))) because D's delta subtracts a mean over S twins, not
  S - 1. The deviations are pooled within g's G layer (all G layers when that layer has
  fewer than MIN_POOL of them). p = (1 + #{null >= delta}) / (1 + #null), one-sided; q is
  Benjamini-Hochberg's over all of the pair's best buddies. When D is itself untrained, D is
  exchangeable with its twins and p is about uniform; it needs S >= 2.
- `pixel_r`, `pixel_channel`: g's best correlation with any pixel channel, and its name.

Per G unit (the scatter and histogram of the pages): D's best correlation over all its units
(`r_disc`), the twins' mean (`r_twins`), their z difference (`delta`), and twin 1's own
deviation from the others (`twin_delta`, scaled as above): the twin-against-twin spread.
`delta_floor` (twice that spread's standard deviation) is the least delta the concept
verdicts (`verdicts`) count as learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from ..core.cli import UserError
from ..core.stores import layer_names, open_match_store, read_table, row_blocks
from ..models.pixels import channel_name
from .buddies import COLUMNS

MIN_POOL = 50  # null deviations a G layer needs to be its own pool
CLIP = 1 - 1e-7  # atanh(+-1) is infinite
CONTROL_COLUMNS = ["r_twins", "delta", "p_learned", "q_learned", "pixel_r", "pixel_channel"]
PAIR_COLUMNS = [*COLUMNS, *CONTROL_COLUMNS]  # and D's q after corr, when it has one
UNIT_COLUMNS = ["gan_layer", "gan_channel", "r_disc", "r_twins", "delta", "twin_delta",
                "pixel_r", "pixel_channel"]


def fisher(r) -> np.ndarray:
    return np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -CLIP, CLIP))


class Best:
    """G units' best correlation within each layer of a network, from its match store."""

    def __init__(self, path: str | Path):
        ds = open_match_store(path)
        self.disc = str(ds.attrs["disc"])
        self.units = pd.MultiIndex.from_arrays(
            [layer_names(ds, "gan").astype(str), ds["gan_channel"].values.astype(int)],
            names=["gan_layer", "gan_channel"])
        layers = layer_names(ds, "disc").astype(str)
        self.layers = list(dict.fromkeys(layers))
        self.channels = ds["disc_channel"].values.astype(int)
        columns = [np.flatnonzero(layers == name) for name in self.layers]
        best, arg = [], []
        for _, block in row_blocks(ds["corr"], path):
            best.append(np.stack([block[:, c].max(axis=1) for c in columns], axis=1))
            arg.append(block.argmax(axis=1))
        self.by_layer = pd.DataFrame(np.concatenate(best), index=self.units,
                                     columns=self.layers)
        self.argmax = np.concatenate(arg)
        self.unit_layers = layers

    def overall(self) -> pd.Series:
        return self.by_layer.max(axis=1)

    def at(self, table: pd.DataFrame) -> np.ndarray:
        """b(g, layer of d) for each row (gan_layer, gan_channel, disc_layer) of `table`."""
        rows = self.units.get_indexer(pd.MultiIndex.from_arrays(
            [table["gan_layer"].astype(str), table["gan_channel"].astype(int)]))
        cols = pd.Index(self.layers).get_indexer(table["disc_layer"].astype(str))
        if (rows < 0).any() or (cols < 0).any():
            raise UserError(f"best buddies name units that the match store of {self.disc} "
                            "does not hold: were both mined from the same layers?")
        return self.by_layer.to_numpy()[rows, cols]


def _scale(s: int) -> float:
    return float(np.sqrt((1 + 1 / s) / (1 + 1 / (s - 1))))


def null_deviations(twins: Sequence[Best], twin_tables: Sequence[pd.DataFrame]
                    ) -> pd.DataFrame:
    """The null of `delta` (module docstring): per twin's best-buddy pair, its G layer and its
    z deviation from the mean of the other twins, scaled."""
    s = len(twins)
    out = []
    for t, table in enumerate(twin_tables):
        others = np.mean([fisher(b.at(table)) for i, b in enumerate(twins) if i != t], axis=0)
        out.append(pd.DataFrame({"gan_layer": table["gan_layer"].astype(str).to_numpy(),
                                 "deviation": (fisher(table["corr"]) - others) * _scale(s)}))
    return pd.concat(out, ignore_index=True)


def p_values(delta: np.ndarray, layers: np.ndarray, null: pd.DataFrame) -> np.ndarray:
    """One-sided p of each delta against the null deviations of its G layer (of all layers
    when its own has fewer than MIN_POOL)."""
    pooled = np.sort(null["deviation"].to_numpy())
    by_layer = {name: np.sort(group.to_numpy())
                for name, group in null.groupby("gan_layer")["deviation"]}
    p = np.empty(len(delta))
    for i, (d, layer) in enumerate(zip(delta, layers, strict=True)):
        pool = by_layer.get(layer)
        pool = pool if pool is not None and len(pool) >= MIN_POOL else pooled
        p[i] = (1 + len(pool) - np.searchsorted(pool, d, side="left")) / (1 + len(pool))
    return p


def _pixels(pixels: Best | None, index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
    if pixels is None:
        return np.full(len(index), np.nan), np.full(len(index), None, dtype=object)
    rows = pixels.units.get_indexer(index)
    if (rows < 0).any():
        raise UserError("the pixel control's match store lacks G units of the best buddies")
    arg = pixels.argmax[rows]
    names = [channel_name(layer, int(c)) for layer, c in
             zip(pixels.unit_layers[arg], pixels.channels[arg], strict=True)]
    return pixels.overall().to_numpy()[rows], np.array(names, dtype=object)


def control_tables(table: pd.DataFrame, disc: Best, twins: Sequence[Best],
                   twin_tables: Sequence[pd.DataFrame], pixels: Best | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair table (PAIR_COLUMNS, with D's q when `table` has it) and the unit table
    (UNIT_COLUMNS) of D's best buddies `table` (module docstring)."""
    if len(twins) != len(twin_tables):
        raise UserError("give one best-buddy table per twin match store, in the same order")
    for t in twins:
        if t.layers != disc.layers:
            raise UserError(f"{t.disc} has layers {t.layers}, {disc.disc} {disc.layers}: a "
                            "twin has its model's layers")
    pairs = table.copy()
    key = pd.MultiIndex.from_arrays([pairs["gan_layer"].astype(str),
                                     pairs["gan_channel"].astype(int)])
    nan = np.full(len(pairs), np.nan)
    if twins:
        b = np.stack([t.at(pairs) for t in twins])
        pairs["r_twins"] = b.mean(axis=0)
        pairs["delta"] = fisher(pairs["corr"]) - fisher(b).mean(axis=0)
    else:
        pairs["r_twins"] = pairs["delta"] = nan
    pairs["p_learned"] = pairs["q_learned"] = nan
    if len(twins) >= 2 and len(pairs):
        null = null_deviations(twins, twin_tables)
        pairs["p_learned"] = p_values(pairs["delta"].to_numpy(),
                                      pairs["gan_layer"].astype(str).to_numpy(), null)
        pairs["q_learned"] = false_discovery_control(pairs["p_learned"].to_numpy())
    pairs["pixel_r"], pairs["pixel_channel"] = _pixels(pixels, key)
    columns = [*COLUMNS, *(["q"] if "q" in table.columns else []), *CONTROL_COLUMNS]
    return pairs[columns], unit_table(disc, twins, pixels)


def unit_table(disc: Best, twins: Sequence[Best], pixels: Best | None = None) -> pd.DataFrame:
    """Per G unit: D's best correlation over all its units beside its twins' (UNIT_COLUMNS)."""
    units = disc.units.to_frame(index=False)
    units["r_disc"] = disc.overall().to_numpy()
    nan = np.full(len(units), np.nan)
    units["r_twins"] = units["delta"] = units["twin_delta"] = nan
    if twins:
        b = np.stack([t.overall().reindex(disc.units).to_numpy() for t in twins])
        units["r_twins"] = b.mean(axis=0)
        units["delta"] = fisher(units["r_disc"]) - fisher(b).mean(axis=0)
        if len(twins) >= 2:
            units["twin_delta"] = (fisher(b[0]) - fisher(b[1:]).mean(axis=0)) * _scale(len(b))
    units["pixel_r"], units["pixel_channel"] = _pixels(pixels, disc.units)
    return units[UNIT_COLUMNS]


def delta_floor(units: pd.DataFrame) -> float | None:
    """The least delta a pair must show to count as learned: twice the standard deviation of
    the twin-against-twin deviations over G's units (None without two twins)."""
    spread = units["twin_delta"].dropna()
    return float(2 * spread.std(ddof=1)) if len(spread) > 1 else None


def read_pair_controls(path: str | Path) -> pd.DataFrame:
    """A pair table the controls step writes (PAIR_COLUMNS)."""
    return read_table(path, "controls table", "controls", PAIR_COLUMNS,
                      {"gan_layer": str, "disc_layer": str, "pixel_channel": str})


def read_unit_controls(path: str | Path) -> pd.DataFrame:
    """A unit table the controls step writes (UNIT_COLUMNS)."""
    return read_table(path, "controls unit table", "controls", UNIT_COLUMNS,
                      {"gan_layer": str, "pixel_channel": str})
