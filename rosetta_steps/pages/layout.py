"""HTML assembly shared by the dictionary (paper, Fig. 2-3) and pairwise pages.

A page is one self-contained file: `templates/page.html` with `page.css` and `page.js` inlined,
every picture a data: URL in one JSON table that the page's script hands to `<img>` elements
as they near the viewport (each picture stored once however often it appears, nothing decoded
before it is needed), and a Content-Security-Policy that allows no network request at all.

Items (concept sections, best-buddy pairs) carry what the sidebar filters on: `data-corr`,
`data-layers` (JSON list of "model/layer") and `data-search` (lower-case tokens); any element
with `data-model` hides with its model's checkbox, any with `data-item` with its item.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from importlib import resources
from string import Template

from ..core.images import Z_RANGE
from ..core.units import Unit
from .heatmaps import colour_scale, data_url


def q_text(q: float | None) -> str:
    """', q 0.012' (', q < 0.001' below that); '' without a q value."""
    if q is None:
        return ""
    return ", q < 0.001" if q < 0.001 else f", q {q:.3f}"


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


class ImageBank:
    """The page's pictures by key: each data: URL is embedded once."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}

    def add(self, key: str, url: str) -> str:
        self.urls[key] = url
        return key

    def json(self) -> str:
        return json.dumps(self.urls, separators=(",", ":")).replace("</", "<\\/")


def img(key: str, alt: str, side: int, cls: str = "") -> str:
    """A lazily filled <img> (the script sets src from the bank)."""
    c = f' class="{cls}"' if cls else ""
    return (f'<img{c} data-key="{escape(key)}" alt="{escape(alt)}" width="{side}" '
            f'height="{side}" loading="lazy" decoding="async">')


def pic(side: int, base: tuple[str, str], heat: tuple[str, str] | None = None,
        title: str = "") -> str:
    """A generated image (key, alt) with an optional heatmap (key, alt) laid over it."""
    t = f' title="{escape(title)}"' if title else ""
    layers = img(*base, side, "base") + (img(*heat, side, "heat") if heat else "")
    return f'<div class="pic"{t}>{layers}</div>'


def base_key(image: int) -> str:
    return f"img-{image}"


def heat_key(unit: Unit, image: int) -> str:
    return f"h-{unit.model}-{unit.layer}-{unit.channel}-{image}"


def unit_pic(side: int, image: int, unit: Unit | None = None, corr: float | None = None) -> str:
    """Generated image `image`, with `unit`'s heatmap over it when given (keys as above)."""
    base = (base_key(image), f"generated image {image}")
    if unit is None:
        return pic(side, base, title=f"image {image}")
    alt = (f"{unit.model} {unit.label} (r = {corr:.2f}): normalised activation map on "
           f"generated image {image}")
    return pic(side, base, (heat_key(unit, image), alt),
               title=f"{unit.model} {unit.label} on image {image}")


def tokens(*words: object) -> str:
    """The data-search value: distinct lower-case tokens."""
    seen = dict.fromkeys(str(w).lower().replace(" ", "_") for w in words if str(w))
    return " ".join(seen)


def item_attrs(item_id: str, corr: float, layers: Iterable[tuple[str, str]],
               search: str) -> str:
    keys = sorted({f"{m}/{la}" for m, la in layers})
    return (f'id="{escape(item_id)}" class="item" tabindex="-1" data-corr="{corr:.4f}" '
            f'data-layers="{escape(json.dumps(keys))}" '
            f'data-search="{escape(search)}"')


def stats_list(stats: Sequence[tuple[str, object]]) -> str:
    cells = "".join(f"<li><b>{escape(str(v))}</b>{escape(label)}</li>" for label, v in stats)
    return f'<ul class="stats">{cells}</ul>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "info") -> str:
    """A table from HTML cell strings (callers escape their text)."""
    th = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{th}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def legend(bank: ImageBank) -> str:
    key = bank.add("colour-scale", data_url(colour_scale(), quality=95))
    lo, hi = Z_RANGE
    return ('<div class="legend"><img data-key="' + key + '" alt="colour scale of the heatmaps,'
            f' from normalised activation {lo:g} (blue) to {hi:g} or more (red)" width="200" '
            f'height="10"><div class="ends"><span>{lo:g}</span><span>normalised activation'
            f"</span><span>{hi:g}+</span></div><div>Each unit's map minus its mean, over its "
            "std (both over all mined images), resized to the image.</div></div>")


def sidebar(title: str, subtitle: str, nav: Sequence[tuple[str, str]], models: Sequence[str],
            layers: Sequence[tuple[str, Sequence[str]]], corr_floor: float, noun: str,
            chips: Sequence[tuple[str, str]], bank: ImageBank) -> str:
    """Title, links, search, model and layer filters, correlation floor, opacity, item links."""
    links = "".join(f'<a href="#{escape(h)}">{escape(t)}</a>' for h, t in nav)
    boxes = "".join(f'<label><input type="checkbox" data-filter-model value="{escape(m)}" '
                    f"checked> {escape(m)}</label>" for m in models)
    groups = "".join(f'<optgroup label="{escape(m)}">' + "".join(
        f'<option value="{escape(m)}/{escape(la)}">{escape(la)}</option>' for la in lay)
        + "</optgroup>" for m, lay in layers)
    chip_html = "".join(f'<li data-item="{escape(i)}"><a href="#{escape(i)}">{escape(t)}</a>'
                        "</li>" for i, t in chips)
    return f"""<h1>{escape(title)}</h1><p class="sub">{escape(subtitle)}</p>
<nav aria-label="Sections">{links}</nav>
<label for="search">Search by layer or unit</label>
<input id="search" type="search" placeholder="layer2, up1.act:12, #3" autocomplete="off">
<fieldset><legend>Models</legend>{boxes}</fieldset>
<label for="layer">Layer</label>
<select id="layer"><option value="">all layers</option>{groups}</select>
<label for="min-corr">Minimum correlation <output id="min-corr-value"></output></label>
<input id="min-corr" type="range" min="{corr_floor:.2f}" max="1" step="0.01"
 value="{corr_floor:.2f}">
<label for="opacity">Heatmap opacity <output id="opacity-value"></output></label>
<input id="opacity" type="range" min="0" max="1" step="0.05" value="1">
<p class="count" id="count" aria-live="polite"></p>
<button type="button" class="reset" id="reset">Clear filters</button>
<p class="keys"><kbd>j</kbd> / <kbd>k</kbd> next / previous {escape(noun)},
 <kbd>/</kbd> search, <kbd>Esc</kbd> clear</p>
{legend(bank)}
<ul class="chips" aria-label="Jump to">{chip_html}</ul>"""


def corr_floor(values: Iterable[float]) -> float:
    """The slider's lowest value: the smallest correlation, rounded down to 0.05."""
    low = min(values, default=0.0)
    return max(-1.0, min(0.0, float(int(low * 20 - (low < 0))) / 20))


def render_page(title: str, noun: str, sidebar_html: str, main_html: str,
                bank: ImageBank) -> str:
    return Template(_template("page.html")).substitute(
        title=escape(title), noun=escape(noun), generator="rosetta_steps",
        css=_template("page.css"), js=_template("page.js"), sidebar=sidebar_html,
        main=main_html, images=bank.json())
