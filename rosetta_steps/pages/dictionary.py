"""The Rosetta dictionary page (paper, Fig. 2 and Fig. 3): header, charts, per-image view,
concepts; `build_dictionary` makes it from the mined results (`concepts`), recomputing only the
heatmaps it shows (`heatmaps`).

Fig. 3 as a grid per concept: one row per example image, the image first, then each model's
normalised activation map of its unit in the concept over the image, headed with the model,
the unit (layer:channel) and its correlation; the concept's other G units (synonyms) and other
partner units are listed under it. Fig. 2 as the per-image view: every concept's G map on one
generated image, a few images to choose from. With the controls (`controls`), a section on
D's untrained twins and the pixels, and each concept's verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import torch

from .. import models
from ..core.cli import UserError
from ..core.units import Unit
from . import layout, plots
from .concepts import (
    Concept,
    Inputs,
    choose_examples,
    heatmap_requests,
    load_inputs,
    per_image_candidates,
)
from .controls import Controls, concept_line, controls_section, load_controls
from .heatmaps import display_side, image_urls, load_models, render_heatmaps


def _column_head(unit: Unit, corr: float, gan: bool, q: float | None = None) -> str:
    cls, r = (' class="kind-g"', "mean r") if gan else ("", "r")
    tip = ("mean correlation with its partners in the D models" if gan
           else "correlation (and q) of its pair with the concept's G unit")
    return (f'<th scope="col" data-model="{escape(unit.model)}"><b{cls}>{escape(unit.model)}</b>'
            f'<code>{escape(unit.label)}</code> <span class="r" title="{tip}">{r} {corr:.2f}'
            f"{layout.q_text(q)}</span></th>")


def concept_section(c: Concept, gan: str, discs: Sequence[str], side: int,
                    q: float | None = None, label: dict | None = None,
                    partner_q: Mapping[str, float] | None = None,
                    verdict: dict | None = None) -> str:
    """One concept (Fig. 3): rows = example images, columns = the image, then every model;
    `q` the largest of its pairs' q values, `partner_q` each shown D unit's, `verdict` its
    controls (`controls.concept_line`)."""
    columns = [c.gan[0]] + [c.disc[d][0] if d in c.disc else None for d in discs]
    models = [gan, *discs]
    head = '<th scope="col">image</th>' + "".join(
        _column_head(*col, gan=m == gan, q=(partner_q or {}).get(m)) if col else
        f'<th scope="col" data-model="{escape(m)}"><b>{escape(m)}</b> none</th>'
        for m, col in zip(models, columns, strict=True))
    rows = []
    for i in c.examples:
        cells = [f"<td>{layout.unit_pic(side, i)}</td>"] + [
            f'<td data-model="{escape(m)}">{layout.unit_pic(side, i, *col) if col else ""}</td>'
            for m, col in zip(models, columns, strict=True)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    if len(c.gan) > 1:
        notes.append(("Synonym G units", [f"<code>{escape(u.label)}</code> ({r:.2f})"
                                          for u, r in c.gan[1:]], gan))
    for d in discs:
        others = c.disc.get(d, [])[1:]
        if others:
            notes.append((f"Other partners in {escape(d)}",
                          [f"<code>{escape(u.label)}</code> ({r:.2f})" for u, r in others], d))
    units = c.units()
    search = layout.tokens(f"#{c.number}", *(u.model for u in units),
                          *(u.layer for u in units), *(u.label for u in units),
                          (verdict or {}).get("verdict") or "")
    attrs = layout.item_attrs(f"concept-{c.number}", c.corr,
                             [(u.model, u.layer) for u in units], search)
    n_units = f"{len(c.gan)} G unit{'s' if len(c.gan) > 1 else ''}"
    return (f'<section {attrs} aria-labelledby="concept-{c.number}-title"><header>'
            f'<h3 id="concept-{c.number}-title">Concept {c.number}</h3><span class="meta">'
            f"{n_units}, {len(units) - len(c.gan)} partner units, mean r {c.corr:.2f}"
            f'<span title="the largest q among its pairs">{layout.q_text(q)}</span>'
            f"{_label_text(label)}</span></header>{concept_line(verdict)}"
            f'<div class="scroll"><table class="grid"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
            + "".join(_note(*n) for n in notes) + "</section>")


def _label_text(label: dict | None) -> str:
    """', label colour:red (IoU 0.12, part)' from a concept's dissection; '' without one."""
    if not label or label["label"] is None:
        return ""
    place = label.get("placement")
    where = {"part": "most of its units follow the label from image to image (IoU with its "
                     "masks above IoU with its mean mask)",
             "position": "most of its units fire where the label usually is, whatever the "
                         "image (IoU with its mean mask at least IoU with its masks)"}
    return (f', <span class="label" title="dissection: the label with the largest mean IoU '
            f'over its {label["units"]} units">{escape(label["label"])} '
            f'(IoU {label["iou"]:.3f}'
            + (f', <span title="{where[place]}">{place}</span>' if place in where else "")
            + ")</span>")


def _note(title: str, units: Sequence[str], model: str, visible: int = 8) -> str:
    """A list of units under a concept; beyond `visible`, the rest folds away."""
    text = ", ".join(units[:visible])
    if len(units) > visible:
        text += (f", <details><summary>{len(units) - visible} more</summary> "
                 f"{', '.join(units[visible:])}</details>")
    return f'<div class="synonyms" data-model="{escape(model)}">{title}: {text}</div>'


def per_image_view(concepts: Sequence[Concept], candidates: Sequence[int], side: int) -> str:
    """Fig. 2: every concept's G map on one generated image; thumbnails switch the image."""
    if not candidates:
        return ""
    buttons, panels = [], []
    for n, i in enumerate(candidates):
        buttons.append(f'<button type="button" data-panel="image-{i}" aria-pressed='
                       f'"{str(n == 0).lower()}" aria-label="show image {i}">'
                       f"{layout.pic(side, (layout.base_key(i), f'generated image {i}'))}</button>")
        tiles = "".join(
            f'<a class="tile" href="#concept-{c.number}" data-item="concept-{c.number}">'
            f"{layout.unit_pic(side, i, *c.gan[0])}<span>#{c.number} "
            f"{escape(c.gan[0][0].label)}</span></a>" for c in concepts)
        hidden = "" if n == 0 else " hidden"
        panels.append(f'<div class="image-panel" id="image-{i}"{hidden}>'
                      f'<p class="lead">Generated image {i}: each concept\'s G unit '
                      f'(its first), as in Fig. 2.</p><div class="tiles">{tiles}</div></div>')
    return ('<section id="per-image"><h2>Every concept on one image</h2>'
            f'<div class="chooser">{"".join(buttons)}</div>{"".join(panels)}</section>')


def charts(inputs: Inputs) -> str:
    """Correlations of best buddies vs all pairs per D; concepts per layer of every model."""
    out = []
    for d in inputs.discs:
        all_pairs = plots.correlation_counts(inputs.match_paths[d])
        bb = np.histogram(np.clip(inputs.bb[d]["corr"].to_numpy(float), -1, 1),
                          bins=plots.EDGES)[0]
        series = [("all pairs", all_pairs, "all"), ("best buddies", bb, "bb")]
        if d in inputs.null_bb:
            series.append(plots.null_series(inputs.null_bb[d]))
        out.append(plots.histogram_svg(f"{inputs.gan} x {d}", series))
    if inputs.stability:
        out.append(plots.lines_svg("stability in n: Jaccard with all images", [
            (f"{d} (halves {t['split_half']['jaccard']:.2f})",
             [r["images"] for r in t["fractions"]], [r["jaccard"] for r in t["fractions"]])
            for d, t in inputs.stability.items()], "images", "Jaccard"))
    for model, layers in inputs.units.items():
        names = [la for la, _ in layers]
        counts = [sum(any(u.model == model and u.layer == la for u in c.units())
                      for c in inputs.concepts) for la in names]
        out.append(plots.bars_svg(f"concepts per layer: {model}", names, counts,
                                  "bar-g" if model == inputs.gan else "bar"))
    null = (" and of the null model's best buddies (G's maps of one image against D's of "
            "another: what chance gives)" if inputs.null_bb else "")
    stability = (" Stability: how far each D's best buddies on the first images agree with "
                 "those on all of them (Jaccard); in brackets, those of two disjoint halves."
                 if inputs.stability else "")
    return ('<section id="charts"><h2>Correlations and layers</h2><p class="lead">Histograms: '
            "correlation of every (G, D) unit pair against that of the best-buddy pairs "
            f"(Eq. 3){null}, each as a share of its own count.{stability} Bars: how many "
            "concepts have a unit at each layer of each model.</p>"
            f'<div class="charts">{"".join(out)}</div></section>')


def header(name: str, inputs: Inputs, specs: Mapping, k: int, examples: int,
           notes: Sequence[str] = ()) -> str:
    rows = []
    for m in [inputs.gan, *inputs.discs]:
        layers = inputs.units[m]
        rows.append([f"<b>{escape(m)}</b>", escape(specs[m].kind), escape(specs[m].objective),
                     f"{sum(c for _, c in layers):,} in {len(layers)} layers",
                     f"{inputs.n_images[m]:,}"])
    stats = [("concepts", len(inputs.concepts)),
             ("Rosetta units", sum(len(c.gan) for c in inputs.concepts)), ("K", k),
             ("images sampled", f"{len(inputs.samples):,}"), ("examples per concept", examples)]
    for d in inputs.discs:
        found = f"{len(inputs.bb[d]):,}"
        if "q" in inputs.bb[d].columns and d in inputs.null_bb:
            null = inputs.null_bb[d].groupby("null").size().mean()
            found += (f" ({(inputs.bb[d]['q'] <= 0.05).sum():,} at q \u2264 0.05; "
                      f"null {null:,.0f})")
        stats.append((f"best buddies with {d}", found))
    s = inputs.samples
    g, images, source = (("the anchor model", "data set's", f"Anchor {escape(s.gan)} (in the "
                          f"generator's role) on data set {escape(s.subset)}")
                         if s.dataset is not None else
                         ("the generator", "generated", f"Generator {escape(s.gan)}, subset "
                          f"{escape(s.subset)}, seed {s.seed}"))
    return (f'<header id="overview"><h2 style="margin-top:0">Rosetta dictionary: {escape(name)}'
            f'</h2><p class="lead">Concepts that {g} shares with every other (D) '
            "model: its units with a best buddy in every D (Rosetta units, Eq. 4), grouped by "
            f"{g}'s own best buddies; largest first. Each concept is shown on the {images} "
            "images where its G units are most active, with every model's "
            f"normalised activation map of its unit in the concept (Fig. 3). {source}.</p>"
            + "".join(f'<p class="lead"><b>Note:</b> {escape(n)}</p>' for n in notes)
            + layout.table(["model", "kind", "training objective", "units", "images mined"],
                          rows) + layout.stats_list(stats) + "</header>")


def render_dictionary(name: str, inputs: Inputs, specs: Mapping, k: int, examples: int,
                      candidates: Sequence[int], heat: Mapping[tuple[Unit, int], str],
                      pictures: Mapping[int, str], notes: Sequence[str] = (),
                      controls: Controls | None = None) -> str:
    """The whole page; `heat` and `pictures` hold the data URLs the sections refer to,
    `notes` are lines about the inputs shown under the header (links a data set skipped), and
    `controls` add their section and each concept's verdict."""
    bank = layout.ImageBank()
    for i, url in pictures.items():
        bank.add(layout.base_key(i), url)
    for (unit, i), url in heat.items():
        bank.add(layout.heat_key(unit, i), url)
    side = display_side(int(inputs.samples.stores[0].sizes["x"]))
    concepts = inputs.concepts
    verdicts = controls.verdicts if controls else {}
    sections = "".join(concept_section(c, inputs.gan, inputs.discs, side, inputs.concept_q(c),
                                       inputs.labels.get(c.number), inputs.partner_q(c),
                                       verdicts.get(c.number))
                       for c in concepts) or (
        '<p class="lead">No concepts: no G unit has a best buddy in every D model.</p>')
    main = (header(name, inputs, specs, k, examples, notes) + charts(inputs)
            + (controls_section(inputs.gan, controls) if controls else "")
            + per_image_view(concepts, candidates, side)
            + f'<section id="concepts"><h2>Concepts</h2>{sections}</section>')
    layers = [(m, [la for la, _ in inputs.units[m]]) for m in [inputs.gan, *inputs.discs]]
    nav = [("overview", "Overview"), ("charts", "Charts"),
           *([("controls", "Controls")] if controls else []),
           *([("per-image", "Per image")] if candidates else []), ("concepts", "Concepts")]
    side_html = layout.sidebar(
        "Rosetta dictionary", f"{name}: {inputs.gan} and {len(inputs.discs)} D models", nav,
        [inputs.gan, *inputs.discs], layers, layout.corr_floor(c.corr for c in concepts),
        "concept", [(f"concept-{c.number}", str(c.number)) for c in concepts], bank)
    return layout.render_page(f"Rosetta dictionary: {name}", "concepts", side_html, main, bank)


def build_dictionary(name: str, concepts: str, samples: Sequence[str], self_matches: str,
                     matches: Sequence[str], bestbuddies: Sequence[str],
                     weights: Mapping[str, str], k: int, examples: int,
                     device: torch.device | str = "cpu",
                     null_bestbuddies: Sequence[str] = (), stability: Sequence[str] = (),
                     dissections: Sequence[str] = (), notes: Sequence[str] = (),
                     controls: Sequence[str] = (), control_units: Sequence[str] = (),
                     twin_bestbuddies: Sequence[str] = ()) -> tuple[str, dict]:
    """The page's HTML and a summary {concepts, heatmaps, images, seconds}; `notes` are shown
    under its header; `controls` and `control_units` (the controls step's tables, one of each
    per D in the order of `matches`) and the twins' best buddies add the controls."""
    if examples < 1 or k < 1:
        raise UserError(f"need --examples >= 1 and --k >= 1, got {examples} and {k}")
    t0 = time.perf_counter()
    inputs = load_inputs(concepts, samples, self_matches, matches, bestbuddies, null_bestbuddies,
                         stability, dissections)
    control_set = load_controls(inputs.gan, inputs.discs, concepts, controls, control_units,
                                twin_bestbuddies)
    choose_examples(inputs, examples)
    candidates = per_image_candidates(inputs)
    requests = heatmap_requests(inputs, candidates)
    loaded = load_models([inputs.gan, *inputs.discs], weights, device)
    anchor_kind = models.GENERATOR if inputs.samples.dataset is None else models.DISCRIMINATIVE
    if loaded[inputs.gan][0].kind != anchor_kind:
        raise UserError(f"{inputs.gan} is not a {anchor_kind} model, which the sample stores "
                        "need in G's role")
    discs = {d: loaded[d] for d in inputs.discs}
    heat = render_heatmaps(loaded[inputs.gan], discs, inputs.samples, requests, inputs.stats,
                           device)
    pictures = image_urls(inputs.samples, requests)
    specs = {m: spec for m, (spec, _) in loaded.items()}
    html = render_dictionary(name, inputs, specs, k, examples, candidates, heat, pictures,
                             notes, control_set)
    summary = {"concepts": len(inputs.concepts), "heatmaps": len(heat),
               "images": len(pictures), "seconds": time.perf_counter() - t0}
    return html, summary
