"""The pairwise page: the best-buddy pairs of one (G, D) pair as one HTML page.

What the original code's pairwise notebook shows: every best-buddy pair (Eq. 3) of a generator
and one discriminative model, most correlated first, each with the G unit's and the D unit's
normalised activation maps over the generated images where the G unit is most active. The
header has both models, the counts, the correlation histogram of best buddies against all
pairs (and against the null model's best buddies, with each pair's q value, when given), and
how the pairs spread over (G layer, D layer). With the pair's controls table (`controls`),
each pair also shows its r in D's untrained twins, its gain over them and that gain's q value.
Only the shown images go through the models again (`heatmaps.render_heatmaps`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .. import models
from ..core.cli import UserError
from ..core.stores import layer_names, open_match_store, unit_stats
from ..core.units import Unit
from ..mining.buddies import read_best_buddies, read_null_best_buddies
from . import layout, plots
from .controls import pair_controls, pair_stats, pair_text
from .gallery import Samples
from .heatmaps import display_side, image_urls, load_models, render_heatmaps

MAX_PAIRS = 200


def pair_card(rank: int, g: Unit, d: Unit, corr: float, examples: Sequence[int],
              side: int, q: float | None = None, controls: str = "") -> str:
    """One pair: rows = the image, G's map, D's map; columns = the example images;
    `controls` its text from the controls table (HTML, `controls.pair_text`)."""
    rows = [('<th scope="row" class="rowhead">image</th>', "", None)]
    for unit, cls in ((g, ' class="kind-g"'), (d, "")):
        rows.append((f'<th scope="row" class="rowhead"><b{cls}>{escape(unit.model)}</b>'
                     f"<code>{escape(unit.label)}</code></th>",
                     f' data-model="{escape(unit.model)}"', unit))
    body = "".join(f"<tr{attr}>{head}" + "".join(
        f"<td>{layout.unit_pic(side, i, unit, corr) if unit else layout.unit_pic(side, i)}</td>"
        for i in examples) + "</tr>" for head, attr, unit in rows)
    search = layout.tokens(f"#{rank}", g.model, g.layer, g.label, d.model, d.layer, d.label)
    attrs = layout.item_attrs(f"pair-{rank}", corr, [(g.model, g.layer), (d.model, d.layer)],
                             search)
    return (f'<article {attrs} aria-label="pair {rank}"><header><h3>#{rank}</h3>'
            f'<span class="meta"><code>{escape(g.label)}</code> and <code>{escape(d.label)}'
            f"</code>, r {corr:.2f}{layout.q_text(q)}{controls}</span></header>"
            '<div class="scroll"><table class="grid">'
            f"<tbody>{body}</tbody></table></div></article>")


def layer_pairs(table: pd.DataFrame, g_layers: Sequence[str], d_layers: Sequence[str]) -> str:
    """Counts of best-buddy pairs per (G layer, D layer), shaded by count."""
    counts = table.groupby(["gan_layer", "disc_layer"]).size()
    top = max(int(counts.max()) if len(counts) else 0, 1)
    rows = []
    for gl in g_layers:
        cells = []
        for dl in d_layers:
            n = int(counts.get((gl, dl), 0))
            shade = f"rgba(39, 87, 199, {0.08 + 0.5 * n / top:.2f})" if n else "transparent"
            cells.append(f'<span class="n" style="background:{shade}">{n}</span>')
        rows.append([f"<code>{escape(gl)}</code>", *cells])
    return layout.table(["G layer \\ D layer", *(f"<code>{escape(d)}</code>" for d in d_layers)],
                       rows, cls="info layers")


def render_pairwise(matches: str, ds: xr.Dataset, table: pd.DataFrame,
                    shown: Sequence[tuple[Unit, Unit, float, list[int]]], sample_set: Samples,
                    specs: Mapping, heat: Mapping[tuple[Unit, int], str],
                    pictures: Mapping[int, str], null: pd.DataFrame | None = None,
                    controls: pd.DataFrame | None = None) -> str:
    """The page: header with both models and counts, charts, then one card per shown pair
    (`table` sorted as `shown`; with q values and the `null` best buddies when given, and
    `controls` row by row with `table`, `controls.pair_controls`)."""
    q = table["q"].tolist() if "q" in table.columns else [None] * len(shown)
    texts = [pair_text(r) for r in controls.head(len(shown)).itertuples()] \
        if controls is not None else [""] * len(shown)
    gan, disc = ds.attrs["gan"], ds.attrs["disc"]
    bank = layout.ImageBank()
    for i, url in pictures.items():
        bank.add(layout.base_key(i), url)
    for (unit, i), url in heat.items():
        bank.add(layout.heat_key(unit, i), url)
    side = display_side(int(sample_set.stores[0].sizes["x"]))
    g_layers = list(dict.fromkeys(layer_names(ds, "gan")))
    d_layers = list(dict.fromkeys(layer_names(ds, "disc")))
    cards = "".join(pair_card(n, g, d, c, ids, side, q[n - 1], texts[n - 1])
                    for n, (g, d, c, ids) in enumerate(shown, 1)) or (
        '<p class="lead">No best-buddy pairs.</p>')
    note = (f"The {len(shown)} most correlated of {len(table):,} pairs are shown "
            "(--max-pairs)." if len(shown) < len(table) else "")
    series = [("all pairs", plots.correlation_counts(matches), "all"),
              ("best buddies", np.histogram(np.clip(table["corr"].to_numpy(float), -1, 1),
                                            bins=plots.EDGES)[0], "bb")]
    if null is not None:
        series.append(plots.null_series(null))
    hist = plots.histogram_svg(f"{gan} x {disc}", series)
    rows = [[f"<b>{escape(m)}</b>", escape(specs[m].kind), escape(specs[m].objective),
             f"{ds.sizes[f'{role}_unit']:,} in {len(lay)} layers"]
            for m, role, lay in ((gan, "gan", g_layers), (disc, "disc", d_layers))]
    significant = ([("at q \u2264 0.05", f"{(table['q'] <= 0.05).sum():,}")]
                   if "q" in table.columns else [])
    nulls = ([("null best buddies", f"{null.groupby('null').size().mean():,.0f}")]
             if null is not None else [])
    stats_html = layout.stats_list([
        ("best-buddy pairs", f"{len(table):,}"), *significant, *nulls,
        *(pair_stats(controls) if controls is not None else []), ("shown", len(shown)),
        ("G units in pairs", table[["gan_layer", "gan_channel"]].drop_duplicates().shape[0]),
        ("D units in pairs", table[["disc_layer", "disc_channel"]].drop_duplicates().shape[0]),
        ("images mined", f"{int(ds.attrs['n_images']):,}"),
        ("images sampled", f"{len(sample_set):,}")])
    main = (f'<header id="overview"><h2 style="margin-top:0">Best buddies: {escape(gan)} and '
            f'{escape(disc)}</h2><p class="lead">Mutual nearest units by correlation (Eq. 3), '
            "most correlated first, each on the images where its G unit is most active ("
            + (f"data set {escape(sample_set.subset)}, {escape(gan)} in G's role"
               if sample_set.dataset is not None else
               f"generated: subset {escape(sample_set.subset)}, seed {sample_set.seed}")
            + f"). {note}</p>"
            + layout.table(["model", "kind", "training objective", "units"], rows) + stats_html
            + '</header><section id="charts"><h2>Correlations and layers</h2>'
            f'<div class="charts">{hist}<div>{layer_pairs(table, g_layers, d_layers)}</div>'
            f'</div></section><section id="pairs"><h2>Pairs</h2><div class="pairs">{cards}'
            "</div></section>")
    sidebar = layout.sidebar(
        "Best buddies", f"{gan} x {disc}", [("overview", "Overview"), ("charts", "Charts"),
                                             ("pairs", "Pairs")],
        [gan, disc], [(gan, g_layers), (disc, d_layers)],
        layout.corr_floor(c for _, _, c, _ in shown), "pair",
        [(f"pair-{n}", str(n)) for n in range(1, len(shown) + 1)], bank)
    return layout.render_page(f"Best buddies: {gan} x {disc}", "pairs", sidebar, main, bank)


def build_pairwise(matches: str, bestbuddies: str, samples: Sequence[str],
                   weights: Mapping[str, str], examples: int, device: torch.device | str = "cpu",
                   max_pairs: int = MAX_PAIRS, null_bestbuddies: str | None = None,
                   controls: str | None = None) -> tuple[str, dict]:
    """The page's HTML and a summary {pairs, shown, heatmaps, seconds}; `controls` is the
    pair's controls table (the controls step's)."""
    if examples < 1 or max_pairs < 0:
        raise UserError(f"need --examples >= 1 and --max-pairs >= 0, got {examples}, "
                        f"{max_pairs}")
    t0 = time.perf_counter()
    ds = open_match_store(matches)
    gan, disc = ds.attrs["gan"], ds.attrs["disc"]
    table = read_best_buddies(bestbuddies)
    if len(table) and (set(table["gan"]) != {gan} or set(table["disc"]) != {disc}):
        raise UserError(f"best buddies {bestbuddies} are of {table['gan'].iloc[0]} x "
                        f"{table['disc'].iloc[0]}, the match store {matches} of {gan} x {disc}")
    sample_set = Samples(samples)
    if sample_set.gan != gan:
        raise UserError(f"the sample stores are of {sample_set.gan}, the pair's G is {gan}")
    stats = {**unit_stats(ds, "gan", gan), **unit_stats(ds, "disc", disc)}
    table = table.sort_values("corr", ascending=False, kind="stable").reset_index(drop=True)
    control_rows = None if controls is None else pair_controls(table, controls, gan, disc)
    shown = []
    for r in table.head(max_pairs).itertuples():
        g, d = Unit(gan, str(r.gan_layer), int(r.gan_channel)), Unit(disc, str(r.disc_layer),
                                                                    int(r.disc_channel))
        if g not in stats or d not in stats:
            raise UserError(f"pair {g.label} / {d.label} of {bestbuddies} is not in {matches}")
        shown.append((g, d, float(r.corr), sample_set.top_images([g], stats, examples)))
    requests: dict[int, set[Unit]] = {}
    for g, d, _, ids in shown:
        for i in ids:
            requests.setdefault(i, set()).update((g, d))
    loaded = load_models([gan, disc], weights, device)
    anchor_kind = models.GENERATOR if sample_set.dataset is None else models.DISCRIMINATIVE
    if loaded[gan][0].kind != anchor_kind or loaded[disc][0].kind != models.DISCRIMINATIVE:
        raise UserError(f"{gan} x {disc} is not a ({anchor_kind}, discriminative model) pair")
    heat = render_heatmaps(loaded[gan], {disc: loaded[disc]}, sample_set, requests, stats, device)
    specs = {m: spec for m, (spec, _) in loaded.items()}
    null = None if null_bestbuddies is None else read_null_best_buddies(null_bestbuddies)
    if null is not None and len(null) and set(null["disc"]) != {disc}:
        raise UserError(f"null best buddies {null_bestbuddies} are not of {gan} x {disc}")
    html = render_pairwise(matches, ds, table, shown, sample_set, specs, heat,
                           image_urls(sample_set, requests), null, control_rows)
    return html, {"pairs": len(table), "shown": len(shown), "heatmaps": len(heat),
                  "seconds": time.perf_counter() - t0}
