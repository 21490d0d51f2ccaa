"""What a dictionary's discoveries are worth against the null model (`null`): per D model, the
observed best buddies (Eq. 3) against those of each null permutation, how many pass a
q-value level, and the observed median correlation beside the null's largest; the Rosetta
units (Eq. 4) observed, those whose pair in every D passes the level, and those the null's
best buddies give when merged the same way; and per concept, the q values of its pairs.

Mutual nearest neighbours return about as many pairs under the null as observed, so the
counts alone say little; the correlations, and so the q values, are what separate them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.cli import UserError
from ..core.intervals import interval
from .dissection import concept_labels


def _units(table: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(table["gan_layer"], table["gan_channel"].astype(int), strict=True))


def discovery(tables: Sequence[pd.DataFrame], null_tables: Sequence[pd.DataFrame],
              concepts: pd.DataFrame, level: float = 0.05,
              stability: Sequence[dict] = (), dissections: Sequence[pd.DataFrame] = ()
              ) -> dict:
    """The discovery summary of one dictionary: best-buddy tables with q (one per D), the null
    best-buddy tables (column `null`: the permutation) in the same order, and its concepts;
    each pair's stability table (`stability`), when given, joins its D's entry, and with the
    models' dissection tables each concept gets its label and IoU (`dissection`)."""
    if not tables or len(tables) != len(null_tables):
        raise UserError("give one null best-buddy table per best-buddy table, in the same order")
    permutations = sorted({int(r) for t in null_tables for r in t["null"]})
    per_disc, null_units, significant_units = {}, {r: None for r in permutations}, None
    for table, null in zip(tables, null_tables, strict=True):
        if "q" not in table.columns:
            raise UserError("a best-buddy table without a q column: make it with null stores")
        counts = [int((null["null"] == r).sum()) for r in permutations]
        disc = str(null["disc"].iloc[0])
        per_disc[disc] = {
            "observed": len(table), "null": {**interval(counts), "per_permutation": counts},
            "significant": int((table["q"] <= level).sum()),
            "median_corr": float(table["corr"].median()) if len(table) else None,
            "null_max_corr": [float(null.loc[null["null"] == r, "corr"].max())
                              for r in permutations]}
        passed = _units(table[table["q"] <= level])
        significant_units = passed if significant_units is None else significant_units & passed
        for r in permutations:
            units = _units(null[null["null"] == r])
            null_units[r] = units if null_units[r] is None else null_units[r] & units
    for table in stability:
        if table.get("disc") not in per_disc:
            raise UserError(f"a stability table of {table.get('disc')!r}, which is none of the "
                            f"dictionary's D models ({', '.join(per_disc)})")
        per_disc[table["disc"]]["stability"] = {key: table[key]
                                                for key in ("fractions", "split_half")}
    gan = concepts[concepts["role"] == "gan"]
    null_counts = [len(null_units[r]) for r in permutations]
    return {"q_level": level, "permutations": len(permutations), "best_buddies": per_disc,
            "rosetta_units": {"observed": int(gan[["layer", "channel"]].drop_duplicates()
                                              .shape[0]),
                              "significant": len(significant_units),
                              "null": {**interval(null_counts),
                                       "per_permutation": null_counts}},
            "concepts": [{**q, **({key: lab[key] for key in ("label", "iou", "placement")}
                                  if dissections else {})}
                         for q, lab in zip(concept_q(tables, concepts),
                                           concept_labels(concepts, dissections), strict=True)]}


def counts_plot(summary: dict) -> list[dict]:
    """A bar chart's rows of a `discovery` summary: per D its observed best buddies and the
    null permutations' mean, one row each (set "observed" and "null"), as a list of records
    (as `dvc plots` reads them)."""
    return [{"disc": disc, "set": name, "best_buddies": count}
            for disc, s in summary["best_buddies"].items()
            for name, count in (("observed", s["observed"]), ("null", s["null"]["mean"]))]


def concept_pairs(tables: Sequence[pd.DataFrame], concepts: pd.DataFrame) -> pd.DataFrame:
    """The best-buddy rows of `tables` whose G unit and D unit are both members of one concept
    of the concept table, with its number (column `concept`)."""
    gan = concepts.loc[concepts["role"] == "gan", ["concept", "layer", "channel"]].rename(
        columns={"layer": "gan_layer", "channel": "gan_channel"})
    disc = concepts.loc[concepts["role"] == "disc", ["concept", "model", "layer", "channel"]]
    disc = disc.rename(columns={"model": "disc", "layer": "disc_layer",
                                "channel": "disc_channel"})
    return pd.concat(tables, ignore_index=True).merge(gan, on=["gan_layer", "gan_channel"]) \
        .merge(disc, on=["concept", "disc", "disc_layer", "disc_channel"])


def concept_q(tables: Sequence[pd.DataFrame], concepts: pd.DataFrame) -> list[dict]:
    """Per concept: its G-D best-buddy pairs (`concept_pairs`) and the largest and median q
    among them."""
    pairs = concept_pairs(tables, concepts)
    out = []
    for number in sorted(concepts["concept"].unique()):
        q = pairs.loc[pairs["concept"] == number, "q"].to_numpy()
        out.append({"concept": int(number), "pairs": len(q),
                    "q_max": float(q.max()) if len(q) else None,
                    "q_median": float(np.median(q)) if len(q) else None})
    return out
