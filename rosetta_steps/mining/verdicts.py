"""One verdict per concept: did training make it, do the pixels explain it, or would any
network of that shape share it (issue 36; the per-pair statistics are `controls`').

For a concept and a D model, the concept's pairs with D are its best-buddy pairs whose two
units are both members of the concept (`discovery.concept_pairs`). A pair passes when
q_learned <= LEVEL and delta > D's delta_floor. The verdict is the first that holds of:

- `learned`: for every D, more than half of the concept's pairs with D pass;
- `pixels`: the pixel control explains the concept's G units as well as the Ds do: the median
  over its G units of atanh(pixel_r) is at least the median over all its pairs of atanh(r)
  less PIXEL_MARGIN;
- `architecture`: otherwise; D's untrained twins match its G units about as well.

Without twins a concept has no verdict (None); without the pixel control the second test is
skipped. The decoy concepts are what the Rosetta merge gives with every D replaced by its
twin s (the rosetta step on the twins' best buddies): how many concepts untrained models
produce, beside the real count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..core.cli import UserError
from ..core.intervals import interval
from ..models.untrained import parse_twin
from .controls import delta_floor, fisher
from .discovery import concept_pairs

LEVEL = 0.05
PIXEL_MARGIN = 0.1  # in atanh units: about 0.07 of r near r = 0.6
VERDICTS = ("learned", "pixels", "architecture")


def _median(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else None


def concept_verdicts(concepts: pd.DataFrame, pairs: Sequence[pd.DataFrame],
                     floors: Mapping[str, float | None], level: float = LEVEL,
                     margin: float = PIXEL_MARGIN) -> list[dict]:
    """Per concept (in number order): its verdict (module docstring), the median delta and
    the passing pairs of each D, and its G units' most frequent best pixel channel with
    their median pixel r. `pairs`: one controls pair table per D; `floors`: each D's
    delta_floor."""
    members = concept_pairs(list(pairs), concepts)
    twins = bool(len(members)) and members["delta"].notna().any()
    pixels = bool(len(members)) and members["pixel_r"].notna().any()
    out = []
    for number in sorted(concepts["concept"].unique()):
        rows = members[members["concept"] == number]
        per_disc, learned = {}, twins
        for disc, group in rows.groupby("disc", sort=False):
            floor = floors.get(disc)
            passed = (group["q_learned"] <= level) & (
                group["delta"] > (floor if floor is not None else np.inf))
            per_disc[disc] = {"delta": _median(group["delta"]), "pairs": len(group),
                              "passed": int(passed.sum())}
            learned = learned and 2 * int(passed.sum()) > len(group)
        units = rows.drop_duplicates(["gan_layer", "gan_channel"])
        channels = Counter(units["pixel_channel"].dropna())
        entry = {"concept": int(number), "delta": per_disc,
                 "pixel_channel": channels.most_common(1)[0][0] if channels else None,
                 "pixel_r": _median(units["pixel_r"])}
        verdict = None
        if twins:
            verdict = "architecture"
            if learned and per_disc:
                verdict = "learned"
            elif pixels and len(rows) and (
                    np.median(fisher(units["pixel_r"])) >= np.median(fisher(rows["corr"]))
                    - margin):
                verdict = "pixels"
        out.append({**entry, "verdict": verdict})
    return out


def pair_summary(pairs: pd.DataFrame, units: pd.DataFrame, twin_tables: Sequence[pd.DataFrame],
                 level: float = LEVEL) -> dict:
    """A D's controls for the discovery metric: its twins' best-buddy counts (and those at q
    <= level, with a q column), the median delta of its pairs, the share with q_learned <=
    level and the share with p_learned <= level (uncorrected: what chance gives is the level
    itself), and its delta_floor."""
    counts = [len(t) for t in twin_tables]
    significant = [int((t["q"] <= level).sum()) for t in twin_tables if "q" in t.columns]
    q = pairs["q_learned"].to_numpy(dtype=np.float64)
    p = pairs["p_learned"].to_numpy(dtype=np.float64)
    return {"twins": {"best_buddies": {**interval(counts), "min": min(counts, default=None),
                                       "max": max(counts, default=None),
                                       "per_twin": counts},
                      "significant": significant},
            "median_delta": _median(pairs["delta"]),
            "learned_share": float(np.mean(q <= level)) if np.isfinite(q).any() else None,
            "p_share": float(np.mean(p <= level)) if np.isfinite(p).any() else None,
            "delta_floor": delta_floor(units)}


def decoy_summary(observed: int, decoys: Sequence[pd.DataFrame]) -> dict:
    """The real concept count beside each decoy merge's (one concept table per twin seed)."""
    counts = [int(t["concept"].nunique()) for t in decoys]
    return {"observed": observed, "decoys": {**interval(counts), "per_twin": counts}}


def verdict_counts(verdicts: Sequence[dict]) -> dict[str, int]:
    counts = Counter(v["verdict"] for v in verdicts if v["verdict"])
    return {name: counts.get(name, 0) for name in VERDICTS}


def with_controls(summary: dict, concepts: pd.DataFrame, pairs: Sequence[pd.DataFrame],
                  units: Sequence[pd.DataFrame], twin_tables: Sequence[pd.DataFrame],
                  decoys: Sequence[pd.DataFrame], level: float = LEVEL) -> dict:
    """A discovery summary (`discovery.discovery`) with the controls: per D `controls`
    (`pair_summary`), per concept its verdict, delta per D and pixel channel, the verdict
    counts and the decoy concepts. `pairs` and `units`: one controls table of each kind per
    D; `twin_tables`: the best-buddy tables of every twin (column disc: twin<s>:<D>)."""
    floors = {}
    for table, unit in zip(pairs, units, strict=True):
        disc = str(table["disc"].iloc[0]) if len(table) else None
        if disc not in summary["best_buddies"]:
            raise UserError(f"a controls table of {disc!r}, which is none of the "
                            f"dictionary's D models ({', '.join(summary['best_buddies'])})")
        mine = [t for t in twin_tables
                if len(t) and (parse_twin(str(t["disc"].iloc[0])) or ("",))[0] == disc]
        summary["best_buddies"][disc]["controls"] = pair_summary(table, unit, mine, level)
        floors[disc] = delta_floor(unit)
    verdicts = concept_verdicts(concepts, pairs, floors, level)
    for entry, verdict in zip(summary["concepts"], verdicts, strict=True):
        entry.update({key: verdict[key] for key in ("verdict", "delta", "pixel_channel",
                                                      "pixel_r")})
    summary["verdicts"] = verdict_counts(verdicts)
    if decoys:
        summary["decoy_concepts"] = decoy_summary(int(concepts["concept"].nunique()), decoys)
    return summary
