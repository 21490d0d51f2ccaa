"""The controls on the pages (issue 36; `mining.controls`, `mining.verdicts`): was what the
pages show learned, is it in the pixels, or does any network of D's shape have it?

On the dictionary page, per D: a scatter of each G unit's best correlation in D against the
mean of its best in D's untrained twins, a histogram of the best-buddy pairs' gain over the
twins (delta, in Fisher z) beside the twins' own spread, and a table of the twins' best-buddy
counts beside D's; per concept, its verdict as a badge with its median delta per D and its
G units' best pixel channel. On the pairwise page, each pair's r in the twins, delta and
q_learned. Every name read from a file is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from ..core.cli import UserError
from ..mining.buddies import read_best_buddies
from ..mining.concepts import read_concept_table
from ..mining.controls import delta_floor, read_pair_controls, read_unit_controls
from ..mining.verdicts import LEVEL, VERDICTS, concept_verdicts, verdict_counts
from ..models.untrained import parse_twin
from . import layout, plots

MEANINGS = {
    "learned": "for every D, most of the concept's pairs match better than D's untrained "
               f"twins do (q_learned \u2264 {LEVEL} and a gain above the twins' own spread): "
               "training made it.",
    "pixels": "a plain measurement of the image (a pixel channel: colour, blur, edges) "
              "follows its G units about as well as the D models do: the pixels explain it.",
    "architecture": "neither: untrained networks of D's shape match its G units about as "
                    "well, so the architecture gives it.",
}
KEY = ["gan_layer", "gan_channel", "disc_layer", "disc_channel"]


@dataclass
class Controls:
    """The controls of a dictionary's pairs, per D in the order of --matches."""

    pairs: dict[str, pd.DataFrame]  # its controls pair table
    units: dict[str, pd.DataFrame]  # its controls unit table
    twins: dict[str, dict[str, pd.DataFrame]]  # each twin's best buddies, by twin name
    floors: dict[str, float | None]  # its delta_floor
    verdicts: dict[int, dict]  # per concept number, as `concept_verdicts` gives it


def _check_pair(table: pd.DataFrame, path: str, gan: str, disc: str) -> None:
    if len(table) and (set(table["gan"]) != {gan} or set(table["disc"]) != {disc}):
        raise UserError(f"controls table {path} is of {table['gan'].iloc[0]} x "
                        f"{table['disc'].iloc[0]}, not {gan} x {disc} (give one per D, in "
                        "the order of --matches)")


def load_controls(gan: str, discs: Sequence[str], concepts_csv: str, controls: Sequence[str],
                  control_units: Sequence[str], twin_bestbuddies: Sequence[str]
                  ) -> Controls | None:
    """The controls of a dictionary of `gan` with `discs`: one pair and one unit table per D,
    in the order of `discs`, and the best buddies of every D's twins; None without any."""
    if not controls:
        if control_units or twin_bestbuddies:
            raise UserError("--control-units and --twin-bestbuddies need --controls")
        return None
    if len(controls) != len(discs) or len(control_units) != len(discs):
        raise UserError(f"give one controls table and one unit table per D model ({len(discs)},"
                        f" in the order of --matches), not {len(controls)} and "
                        f"{len(control_units)}")
    pairs, units = {}, {}
    for disc, path, unit_path in zip(discs, controls, control_units, strict=True):
        pairs[disc] = read_pair_controls(path)
        _check_pair(pairs[disc], path, gan, disc)
        units[disc] = read_unit_controls(unit_path)
    twins: dict[str, dict[str, pd.DataFrame]] = {d: {} for d in discs}
    for path in twin_bestbuddies:
        table = read_best_buddies(path)
        if not len(table):  # no pair, hence no name: as `verdicts.pair_summary` counts them
            continue
        name = str(table["disc"].iloc[0])
        parsed = parse_twin(name)
        if parsed is None or parsed[0] not in twins:
            raise UserError(f"best buddies {path} are of {name}, an untrained twin of none of "
                            f"the D models ({', '.join(discs)})")
        twins[parsed[0]][name] = table
    twins = {d: dict(sorted(t.items(), key=lambda kv: parse_twin(kv[0])[1]))
             for d, t in twins.items()}
    floors = {d: delta_floor(u) for d, u in units.items()}
    verdicts = concept_verdicts(read_concept_table(concepts_csv), list(pairs.values()), floors)
    return Controls(pairs, units, twins, floors, {v["concept"]: v for v in verdicts})


def _counted(table: pd.DataFrame) -> str:
    """'123' best buddies, with ' (100 at q <= 0.05)' when the table has q values."""
    text = f"{len(table):,}"
    if "q" in table.columns:
        text += f" ({int((table['q'] <= LEVEL).sum()):,} at q \u2264 {LEVEL})"
    return text


def _number(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, fmt)


def _counts_table(c: Controls) -> str:
    """Per D: its best buddies, each twin's, its median delta, how many pass, its floor."""
    rows = []
    for d, pairs in c.pairs.items():
        twins = ", ".join(f"{escape(name)} {_counted(t)}" for name, t in c.twins[d].items())
        q = pairs["q_learned"].to_numpy(dtype=np.float64)
        learned = f"{int((q <= LEVEL).sum()):,}" if np.isfinite(q).any() else "-"
        delta = pairs["delta"].dropna()
        rows.append([f"<b>{escape(d)}</b>", _counted(pairs), twins or "none",
                     _number(float(delta.median()) if len(delta) else None, "+.2f"), learned,
                     _number(c.floors[d])])
    return layout.table(["D model", "best buddies", "each untrained twin's best buddies",
                         "median \u0394z", f"learned (q_learned \u2264 {LEVEL})",
                         "\u0394z floor"], rows)


def _charts(gan: str, d: str, pairs: pd.DataFrame, units: pd.DataFrame,
            floor: float | None) -> list[str]:
    """D's scatter of G units (D's best r against its twins') and its delta histogram."""
    out = []
    shown = units[np.isfinite(units["r_twins"]) & np.isfinite(units["r_disc"])]
    if len(shown):
        tips = [f"{gan} {layer}:{channel}: {d} r {r:.2f}, its twins r {t:.2f}"
                for layer, channel, r, t in zip(shown["gan_layer"], shown["gan_channel"],
                                                shown["r_disc"], shown["r_twins"], strict=True)]
        out.append(plots.scatter_svg(
            f"{gan} units: {d} against its twins", shown["r_twins"].to_numpy(float),
            shown["r_disc"].to_numpy(float), "best r in the untrained twins (mean)",
            f"best r in {d}", tips))
    delta = pairs["delta"].to_numpy(dtype=np.float64)
    spread = units["twin_delta"].to_numpy(dtype=np.float64)
    delta, spread = delta[np.isfinite(delta)], spread[np.isfinite(spread)]
    if len(delta):
        edges = plots.spread_edges(np.concatenate([delta, spread]))
        series = [("best buddies", np.histogram(delta, bins=edges)[0], "bb")]
        if len(spread):
            series.append(("twin vs twins", np.histogram(spread, bins=edges)[0], "twin"))
        title = f"{d}: gain over its twins" + (f" (floor {floor:.2f})" if floor else "")
        out.append(plots.histogram_svg(title, series, edges, "\u0394z = atanh r \u2212 the "
                                       "twins' mean atanh r", "share"))
    return out


def controls_section(gan: str, c: Controls) -> str:
    """The dictionary page's section on the controls: charts per D, counts, verdicts."""
    charts = [svg for d in c.pairs for svg in _charts(gan, d, c.pairs[d], c.units[d],
                                                       c.floors[d])]
    counts = verdict_counts(list(c.verdicts.values()))
    tally = (f" Verdicts: {', '.join(f'{n} {v}' for v, n in counts.items())}."
             if sum(counts.values()) else "")
    meanings = "".join(f'<li><span class="verdict v-{v}">{v}</span> {MEANINGS[v]}</li>'
                       for v in VERDICTS)
    return ('<section id="controls"><h2>Learned, or built in?</h2><p class="lead">Each D '
            "model against its untrained twins (the same architecture at random weights) and "
            "against the pixels. Scatter: each G unit's best correlation with any unit of D "
            "(up) against the mean of its best in the twins (across); above the diagonal, "
            "training helped. Histogram: each best-buddy pair's gain over the twins, "
            "\u0394z, beside the gain one twin shows over the others (what chance gives); the "
            f"floor is twice the latter's spread.{tally}</p>"
            f'<ul class="lead verdicts">{meanings}</ul>'
            f'<div class="charts">{"".join(charts)}</div>{_counts_table(c)}</section>')


def concept_line(verdict: dict | None) -> str:
    """A concept's verdict badge, median delta per D and best pixel channel ('' without)."""
    if verdict is None:
        return ""
    v = verdict["verdict"]
    badge = (f'<span class="verdict v-{v}" title="{escape(MEANINGS[v])}">{v}</span> '
             if v else "")
    parts = []
    deltas = [f"{escape(d)} {s['delta']:+.2f} ({s['passed']} of {s['pairs']} pairs learned)"
              for d, s in verdict["delta"].items() if s["delta"] is not None]
    if deltas:
        parts.append("gain over untrained twins (median \u0394z): " + ", ".join(deltas))
    if verdict["pixel_channel"] is not None:
        parts.append(f"best pixel channel <code>{escape(str(verdict['pixel_channel']))}"
                     f"</code> (r {_number(verdict['pixel_r'])})")
    if not badge and not parts:
        return ""
    return f'<p class="verdict-line">{badge}{"; ".join(parts)}</p>'


def pair_controls(table: pd.DataFrame, path: str, gan: str, disc: str) -> pd.DataFrame:
    """The controls table at `path` row by row with the best-buddy pairs of `table`, in its
    order; every pair must be in it."""
    controls = read_pair_controls(path)
    _check_pair(controls, path, gan, disc)
    if controls.duplicated(KEY).any():
        raise UserError(f"controls table {path} lists a pair twice")
    merged = table[KEY].merge(controls, on=KEY, how="left", indicator=True)
    if (merged["_merge"] != "both").any():
        raise UserError(f"controls table {path} lacks best-buddy pairs of {gan} x {disc}: was it "
                        "made from other best buddies?")
    return merged


def pair_text(r) -> str:
    """A pair's controls (a row of `pair_controls`) for its card: ', twins r 0.41, Δz +0.35,
    q_learned 0.012, pixels <channel> r 0.22', each part only when known."""
    text = ""
    if np.isfinite(r.r_twins):
        text += f", twins r {r.r_twins:.2f}, \u0394z {r.delta:+.2f}"
    if np.isfinite(r.q_learned):
        text += ", q_learned < 0.001" if r.q_learned < 0.001 else f", q_learned {r.q_learned:.3f}"
    if np.isfinite(r.pixel_r):
        text += f", pixels <code>{escape(str(r.pixel_channel))}</code> r {r.pixel_r:.2f}"
    return text


def pair_stats(controls: pd.DataFrame) -> list[tuple[str, str]]:
    """The pairwise page's header counts of the controls: median delta, pairs learned."""
    q = controls["q_learned"].to_numpy(dtype=np.float64)
    delta = controls["delta"].dropna()
    return ([("median \u0394z over the twins", f"{delta.median():+.2f}")] if len(delta) else []) \
        + ([(f"learned, q_learned \u2264 {LEVEL}", f"{int((q <= LEVEL).sum()):,}")]
           if np.isfinite(q).any() else [])
