"""`python -m rosetta_steps.dictionary`: the Rosetta dictionary as one HTML page (paper, Fig. 2-3).

For each concept of the rosetta step, largest first (Fig. 3 and the supplementary dictionaries):
the generated images where its G units are most active and, for every model, the normalised
activation map of its unit in the concept over each image; synonym G units listed. A per-image
view shows every concept's G map on one generated image (Fig. 2). The header names the models
(kind, training objective), the images, K and the counts; charts show the correlations of best
buddies against all pairs per D and the concepts per layer of every model. Only the example
images go through the models again (`heatmaps.render_heatmaps`).

    python -m rosetta_steps.dictionary --name shapes --concepts C.csv --samples S*.zarr \
        --self-matches SELF.zarr --matches M*.zarr --bestbuddies B*.csv \
        --weights shapes-gan=W.safetensors ... --k 5 --examples 4 --out shapes.html
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import models
from .cli import UserError, parse_weights, run
from .devices import add_device_options, resolve_device, set_threads
from .dictionary_page import render_dictionary
from .heatmaps import Samples, Unit, image_urls, load_models, render_heatmaps, unit_stats
from .rosetta import read_best_buddies, read_concept_table
from .stores import atomic_output, layer_names, open_match_store

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


def _layers(ds, side: str) -> list[tuple[str, int]]:
    names = pd.Series(layer_names(ds, side))
    return list(names.value_counts(sort=False).reindex(names.unique()).items())


def load_inputs(concepts_csv: str, samples: Sequence[str], self_matches: str,
                matches: Sequence[str], bestbuddies: Sequence[str]) -> Inputs:
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
    return Inputs(concepts, sample_set, gan, list(paths), paths, n_images, units, bb, stats)


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


def build_dictionary(name: str, concepts: str, samples: Sequence[str], self_matches: str,
                     matches: Sequence[str], bestbuddies: Sequence[str],
                     weights: Mapping[str, str], k: int, examples: int,
                     device: str = "cpu") -> tuple[str, dict]:
    """The page's HTML and a summary {concepts, heatmaps, images, seconds}."""
    if examples < 1 or k < 1:
        raise UserError(f"need --examples >= 1 and --k >= 1, got {examples} and {k}")
    t0 = time.perf_counter()
    inputs = load_inputs(concepts, samples, self_matches, matches, bestbuddies)
    choose_examples(inputs, examples)
    candidates = per_image_candidates(inputs)
    requests = heatmap_requests(inputs, candidates)
    dev = resolve_device(device)
    loaded = load_models([inputs.gan, *inputs.discs], weights, dev)
    if loaded[inputs.gan][0].kind != models.GENERATOR:
        raise UserError(f"{inputs.gan} is not a generator")
    discs = {d: loaded[d] for d in inputs.discs}
    heat = render_heatmaps(loaded[inputs.gan], discs, inputs.samples, requests, inputs.stats,
                           dev)
    pictures = image_urls(inputs.samples, requests)
    specs = {m: spec for m, (spec, _) in loaded.items()}
    html = render_dictionary(name, inputs, specs, k, examples, candidates, heat, pictures)
    summary = {"concepts": len(inputs.concepts), "heatmaps": len(heat),
               "images": len(pictures), "seconds": time.perf_counter() - t0}
    return html, summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.dictionary",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the dictionary's name (page title)")
    parser.add_argument("--concepts", required=True, help="concept CSV of the rosetta step")
    parser.add_argument("--samples", nargs="+", required=True, help="sample stores (Zarr)")
    parser.add_argument("--self-matches", required=True, help="G-vs-G match store (Zarr)")
    parser.add_argument("--matches", nargs="+", required=True,
                        help="match stores of (G, D) pairs, one per D, in column order")
    parser.add_argument("--bestbuddies", nargs="+", required=True, help="best-buddy CSVs")
    parser.add_argument("--weights", action="append", metavar="NAME=PATH",
                        help="a model's weights file (repeat); without one a model loads "
                        "its default weights (random for the shapes zoo)")
    parser.add_argument("--k", type=int, default=5, help="the K mined with (shown in header)")
    parser.add_argument("--examples", type=int, default=4, help="example images per concept")
    add_device_options(parser)
    parser.add_argument("--out", required=True, help="HTML file to write")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    html, s = build_dictionary(args.name, args.concepts, args.samples, args.self_matches,
                               args.matches, args.bestbuddies, parse_weights(args.weights),
                               args.k, args.examples, args.device)
    with atomic_output(args.out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    print(f"{s['concepts']} concepts, {s['heatmaps']} heatmaps on {s['images']} images in "
          f"{s['seconds']:.1f} s -> {args.out}")


if __name__ == "__main__":
    raise SystemExit(run(main))
