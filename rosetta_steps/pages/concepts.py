"""What the dictionary page is made of (paper, Fig. 2-3), read and checked to fit together:
the concepts of the rosetta step (`Concept`: G units, synonyms first to last, and each D
model's partner units), the sample stores, the match stores' unit statistics (Eq. 1) and the
best buddies; then the images each concept is shown on and the heatmaps the page needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.cli import UserError
from ..core.stores import layer_names, open_match_store, read_json, unit_stats
from ..core.units import Unit
from ..mining.buddies import read_best_buddies, read_null_best_buddies
from ..mining.concepts import read_concept_table
from ..mining.discovery import concept_pairs
from ..mining.dissection import concept_labels, read_dissection
from .gallery import Samples

PER_IMAGE = 4  # images offered in the per-image view (Fig. 2)


@dataclass
class Concept:
    """One concept: its G units (synonyms) and each D model's partner units."""

    number: int
    gan: list[tuple[Unit, float]]  # most correlated first; the first is the one shown
    disc: dict[str, list[tuple[Unit, float]]]  # per D model, most correlated first
    examples: list[int] = field(default_factory=list)

    @property
    def corr(self) -> float:
        """The shown G unit's correlation (its mean over the D models' partners)."""
        return self.gan[0][1]

    def shown(self) -> list[tuple[Unit, float]]:
        """The unit each model shows: G's first, then each D's most correlated partner."""
        return [self.gan[0], *(units[0] for units in self.disc.values())]

    def units(self) -> list[Unit]:
        return [u for u, _ in self.gan] + [u for us in self.disc.values() for u, _ in us]


def read_concepts(path: str | Path) -> list[Concept]:
    """The concept CSV of the rosetta step, as concepts in their order (1 = largest)."""
    table = read_concept_table(path)
    if not set(table["role"]) <= {"gan", "disc"}:
        raise UserError(f"concept table {path} has roles other than gan and disc")
    out = []
    for number, rows in table.groupby("concept", sort=True):
        rows = rows.sort_values(["corr", "layer", "channel"], ascending=[False, True, True],
                                kind="stable")
        units = [(Unit(r.model, r.layer, int(r.channel)), float(r.corr), r.role)
                 for r in rows.itertuples()]
        gan = [(u, c) for u, c, role in units if role == "gan"]
        disc: dict[str, list[tuple[Unit, float]]] = {}
        for u, c, role in units:
            if role == "disc":
                disc.setdefault(u.model, []).append((u, c))
        if not gan:
            raise UserError(f"concept {number} of {path} has no G unit")
        out.append(Concept(int(number), gan, disc))
    return out


@dataclass
class Inputs:
    """Everything the page is made from, checked to fit together."""

    concepts: list[Concept]
    samples: Samples
    gan: str
    discs: list[str]  # in the order of --matches
    match_paths: dict[str, str]
    n_images: dict[str, int]  # images mined, per model (G: the self-match store's)
    units: dict[str, list[tuple[str, int]]]  # per model: (layer, channels) in order
    bb: dict[str, pd.DataFrame]
    stats: dict[Unit, tuple[float, float]]
    null_bb: dict[str, pd.DataFrame]  # the null's best buddies per D (empty without a null)
    stability: dict[str, dict]  # per D, its stability table (empty without them)
    labels: dict[int, dict]  # per concept number, its dissection label (empty without them)

    pairs: pd.DataFrame | None  # best buddies inside concepts (`concept_pairs`), when with q

    def concept_q(self, c: Concept) -> float | None:
        """The largest q among the concept's G-D best-buddy pairs (None without q values)."""
        if self.pairs is None:
            return None
        q = self.pairs.loc[self.pairs["concept"] == c.number, "q"]
        return float(q.max()) if len(q) else None

    def partner_q(self, c: Concept) -> dict[str, float]:
        """Per D, the q of the pair its shown (most correlated) unit makes in the concept."""
        if self.pairs is None:
            return {}
        mine = self.pairs[self.pairs["concept"] == c.number]
        out = {}
        for d, units in c.disc.items():
            shown = units[0][0]
            q = mine.loc[(mine["disc"] == d) & (mine["disc_layer"] == shown.layer)
                         & (mine["disc_channel"] == shown.channel), "q"]
            if len(q):
                out[d] = float(q.min())
        return out


def _layers(ds, side: str) -> list[tuple[str, int]]:
    names = pd.Series(layer_names(ds, side))
    return list(names.value_counts(sort=False).reindex(names.unique()).items())


def load_inputs(concepts_csv: str, samples: Sequence[str], self_matches: str,
                matches: Sequence[str], bestbuddies: Sequence[str],
                null_bestbuddies: Sequence[str] = (), stability: Sequence[str] = (),
                dissections: Sequence[str] = ()) -> Inputs:
    concepts = read_concepts(concepts_csv)
    sample_set = Samples(samples)
    gan = sample_set.gan
    self_ds = open_match_store(self_matches)
    if self_ds.attrs.get("gan") != gan or self_ds.attrs.get("disc") != gan:
        raise UserError(f"{self_matches} matches {self_ds.attrs.get('gan')} with "
                        f"{self_ds.attrs.get('disc')}, not {gan} with itself (the samples' G)")
    stats = unit_stats(self_ds, "gan", gan)
    n_images, units = {gan: int(self_ds.attrs["n_images"])}, {gan: _layers(self_ds, "gan")}
    paths: dict[str, str] = {}
    for p in matches:
        ds = open_match_store(p)
        disc = ds.attrs["disc"]
        if ds.attrs["gan"] != gan:
            raise UserError(f"match store {p} is of G {ds.attrs['gan']}, the samples of {gan}")
        if disc in paths:
            raise UserError(f"two match stores of {disc} among --matches: {paths[disc]}, {p}")
        paths[disc] = str(p)
        stats.update(unit_stats(ds, "disc", disc))
        n_images[disc], units[disc] = int(ds.attrs["n_images"]), _layers(ds, "disc")
    for c in concepts:
        if any(u.model != gan for u, _ in c.gan):
            raise UserError(f"concept {c.number} has G units of {c.gan[0][0].model}, but the "
                            f"samples and match stores are of {gan}")
        extra = sorted({u.model for u in c.units()} - {gan, *paths})
        if extra:
            raise UserError(f"concept {c.number} has units of {extra[0]}, which has no match "
                            f"store among --matches (of {gan} with {', '.join(paths)})")
        c.disc = {d: c.disc[d] for d in paths if d in c.disc}  # columns in --matches order
        for u in c.units():
            if u not in stats:
                raise UserError(f"unit {u.model} {u.label} of concept {c.number} is not in "
                                "the match stores: were they mined with the same layers?")
    tables = {}
    for p in bestbuddies:
        t = read_best_buddies(p)
        if len(t):
            tables[t["disc"].iloc[0]] = t
    unknown = set(tables) - set(paths)
    if unknown:
        raise UserError(f"best buddies of {sorted(unknown)} given but no match store of them")
    bb = {d: tables.get(d, pd.DataFrame({"corr": []})) for d in paths}
    null_bb = {}
    for p in null_bestbuddies:
        t = read_null_best_buddies(p)
        if len(t):
            null_bb[t["disc"].iloc[0]] = t
    if set(null_bb) - set(paths):
        raise UserError(f"null best buddies of {sorted(set(null_bb) - set(paths))} given but "
                        "no match store of them")
    stability_tables = {}
    for p in stability:
        found = read_json(p, "stability table")
        if found.get("disc") not in paths:
            raise UserError(f"stability table {p} is of {found.get('disc')!r}, which has no "
                            "match store among --matches")
        stability_tables[found["disc"]] = found
    table = read_concept_table(concepts_csv)
    labels = {c["concept"]: c for c in concept_labels(
        table, [read_dissection(p) for p in dissections])} if dissections else {}
    found = [t for t in bb.values() if len(t)]
    with_q = found and all("q" in t.columns for t in found)
    pairs = concept_pairs(found, table) if with_q else None
    return Inputs(concepts, sample_set, gan, list(paths), paths, n_images, units, bb, stats,
                  null_bb, stability_tables, labels, pairs)


def choose_examples(inputs: Inputs, n: int) -> None:
    """Each concept's examples: the images where its G units are most active on average."""
    for c in inputs.concepts:
        c.examples = inputs.samples.top_images([u for u, _ in c.gan], inputs.stats, n)


def per_image_candidates(inputs: Inputs, n: int = PER_IMAGE) -> list[int]:
    """Images for the per-image view: most concepts strongly active (sum of positive scores)."""
    if not inputs.concepts:
        return []
    s = inputs.samples
    scores = np.stack([s.scores([c.gan[0][0]], inputs.stats) for c in inputs.concepts], axis=1)
    total = np.clip(scores, 0, None).sum(axis=1)
    return [int(i) for i in s.ids[np.lexsort((s.ids, -total))[:n]]]


def heatmap_requests(inputs: Inputs, candidates: Sequence[int]) -> dict[int, set[Unit]]:
    """Per image id, the units whose maps the page shows on it."""
    req: dict[int, set[Unit]] = {}
    for c in inputs.concepts:
        for i in c.examples:
            req.setdefault(i, set()).update(u for u, _ in c.shown())
        for i in candidates:
            req.setdefault(i, set()).add(c.gan[0][0])
    return req
