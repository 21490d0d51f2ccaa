"""The dictionary and pairwise pages: made by the steps from a real tiny run, checked in Chromium.

A session fixture runs the pipeline's own steps (sample, match, reduce, bestbuddies, rosetta)
on 24 images with the shapes GAN and two discriminative models at fixed random weights, then
renders both pages through their commands. The browser tests drive Debian's chromium and
chromium-driver (installed by .ci/run) with selenium; they skip only when those are absent.
"""

import base64
import io
import json
import re
import shutil
from html import escape
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from rosetta_steps import (
    bestbuddies,
    dictionary,
    dissect,
    match,
    models,
    pairwise,
    reduce,
    rosetta,
    sample,
    stability,
)
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.stores import open_match_store, unit_stats
from rosetta_steps.mining.controls import Best
from rosetta_steps.pages.concepts import PER_IMAGE
from rosetta_steps.pages.controls import concept_line
from rosetta_steps.pages.dictionary import build_dictionary
from rosetta_steps.pages.gallery import Samples
from rosetta_steps.pages.heatmaps import heat_rgba, normalise_maps

GAN, DISCS, N_IMAGES, K, EXAMPLES = "shapes-gan", ("shapes-cnn-sup", "shapes-cnn-ssl"), 24, 5, 4


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """Stores, tables and both pages of a tiny real run; returns a dict of paths."""
    out = tmp_path_factory.mktemp("pages")
    weights = {}
    for seed, name in enumerate((GAN, *DISCS)):
        torch.manual_seed(seed)
        state = models.get(name).build().state_dict()
        weights[name] = out / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights[name]))
    w = weight_args(weights)
    shards = []
    for start in (0, N_IMAGES // 2):
        shards.append(out / f"samples-{start}.zarr")
        assert run(sample.main, ["--gan", GAN, "--weights", f"{GAN}={weights[GAN]}", "--start",
                                 str(start), "--count", str(N_IMAGES // 2), "--batch-size", "12",
                                 "--out", str(shards[-1])]) == 0
    paths = {"samples": shards, "weights": weights, "out": out, "matches": [], "bb": [],
             "null_bb": [], "stability": [], "dissections": []}
    for name in (GAN, *DISCS):
        paths["dissections"].append(out / f"dissection-{name}.csv")
        assert run(dissect.main, ["--model", name, "--weights", f"{name}={weights[name]}",
                                  "--images", str(N_IMAGES), "--batch-size", "12", "--out",
                                  str(paths["dissections"][-1])]) == 0
    for disc in (*DISCS, None):
        tag = disc or "self"
        parts = [str(out / f"{tag}.{start}.shard.zarr") for start in (0, N_IMAGES // 2)]
        for start, part in zip((0, N_IMAGES // 2), parts, strict=True):
            argv = ["--gan", GAN, "--weights", f"{GAN}={weights[GAN]}", "--start", str(start),
                    "--count", str(N_IMAGES // 2), "--batch-size", "12", "--null", "2",
                    "--out", part]
            if disc:
                argv += ["--disc", disc, "--weights", f"{disc}={weights[disc]}"]
            assert run(match.main, argv) == 0
        store = out / f"{tag}.zarr"
        nulls = [str(out / f"{tag}.null-{r}.zarr") for r in (1, 2)]
        assert run(reduce.main, [*parts, "--out", str(store), "--null-out", *nulls]) == 0
        if disc:
            paths["stability"].append(out / f"stability-{tag}.json")
            assert run(stability.main, [*parts, "--k", str(K), "--out",
                                        str(paths["stability"][-1])]) == 0
            paths["matches"].append(store)
            paths["bb"].append(out / f"bb-{tag}.csv")
            paths["null_bb"].append(out / f"bb-null-{tag}.csv")
            assert run(bestbuddies.main, [str(store), "--k", str(K), "--null", *nulls,
                                          "--out", str(paths["bb"][-1]), "--null-out",
                                          str(paths["null_bb"][-1])]) == 0
    paths["self"], paths["concepts"] = out / "self.zarr", out / "concepts.csv"
    assert run(rosetta.main, ["--bestbuddies", *map(str, paths["bb"]), "--self-matches",
                              str(paths["self"]), "--k", str(K), "--out",
                              str(paths["concepts"])]) == 0
    paths["dictionary"] = out / "dictionary" / "shapes.html"
    assert run(dictionary.main, dictionary_argv(paths)) == 0
    paths["pairwise"] = out / "pairwise" / GAN / "all" / f"{DISCS[0]}.html"
    assert run(pairwise.main, ["--matches", str(paths["matches"][0]), "--bestbuddies",
                               str(paths["bb"][0]), "--null-bestbuddies",
                               str(paths["null_bb"][0]), "--samples", *map(str, shards), *w,
                               "--examples", "3", "--max-pairs", "40", "--device", "cpu",
                               "--out", str(paths["pairwise"])]) == 0
    return paths


def weight_args(weights):
    return [a for name, path in weights.items() for a in ("--weights", f"{name}={path}")]


def dictionary_argv(p, weights=None, out=None):
    """The dictionary step's command line, as the workflow writes it."""
    return ["--name", "shapes", "--concepts", str(p["concepts"]), "--samples",
            *map(str, p["samples"]), "--self-matches", str(p["self"]), "--matches",
            *map(str, p["matches"]), "--bestbuddies", *map(str, p["bb"]),
            "--null-bestbuddies", *map(str, p["null_bb"]), "--stability",
            *map(str, p["stability"]), "--dissections", *map(str, p["dissections"]),
            *(weight_args(p["weights"]) if weights is None else weights), "--k", str(K),
            "--examples", str(EXAMPLES), "--device", "cpu", "--out", str(out or p["dictionary"])]


class Tags(HTMLParser):
    """Start tags of a page with their attributes, and the image table."""

    def __init__(self, text):
        super().__init__()
        self.tags, self._in_images, self.images = [], False, ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_images = dict(attrs).get("id") == "image-data"

    def handle_data(self, data):
        if self._in_images:
            self.images += data

    def handle_endtag(self, tag):
        self._in_images = False

    def find(self, tag=None, **attrs):
        return [a for t, a in self.tags if (tag is None or t == tag)
                and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]


def concept_table(p):
    c = pd.read_csv(p["concepts"], dtype={"layer": str})
    shown = c[c.role == "gan"].sort_values(["corr", "layer", "channel"],
                                           ascending=[False, True, True])
    return c, shown.groupby("concept").head(1).set_index("concept").sort_index()


def test_dictionary_page_holds_every_concept_and_its_units(run_dir):
    c, first = concept_table(run_dir)
    assert c.concept.nunique() >= 3, "the tiny run should give a few concepts to show"
    page = Tags(run_dir["dictionary"].read_text())
    items = page.find("section", class_="item")
    assert [i["id"] for i in items] == [f"concept-{n}" for n in sorted(c.concept.unique())]
    for item in items:
        n = int(item["id"].split("-")[1])
        label = f"{first.loc[n, 'layer']}:{first.loc[n, 'channel']}"
        assert float(item["data-corr"]) == pytest.approx(first.loc[n, "corr"], abs=1e-4)
        assert label in item["data-search"].split()
        assert {f"{m}/{la}" for m, la in c[c.concept == n][["model", "layer"]].values} == \
            set(json.loads(item["data-layers"]))
    images = json.loads(page.images)
    keys = [a["data-key"] for a in page.find("img")]
    assert keys and set(keys) <= set(images), "every picture the page shows is embedded"
    assert all(a.get("alt") for a in page.find("img"))
    assert all(u.startswith("data:image/") for u in images.values())
    text = run_dir["dictionary"].read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "no network references"
    assert "default-src 'none'" in text
    # heatmaps: one per model on each example image, plus each concept's G map per chosen image
    heat = [a for a in page.find("img") if "heat" in a.get("class", "")]
    n_concepts = c.concept.nunique()
    assert len(heat) == n_concepts * EXAMPLES * (1 + len(DISCS)) + n_concepts * PER_IMAGE


def test_dictionary_page_weighs_pairs_against_the_null(run_dir):
    """Each D's histogram has the null's best buddies; the header counts pairs at q <= 0.05
    and the null's mean; each concept shows the largest q of its pairs."""
    text = run_dir["dictionary"].read_text()
    page = Tags(text)
    assert len(page.find("rect", class_="null")) >= len(DISCS) * 2  # bars and legend keys
    # the stability chart: a line per D through (images, Jaccard with all) of its table
    lines = page.find("polyline")
    assert len(lines) == len(DISCS)
    for n, path in enumerate(run_dir["stability"]):
        table = json.loads(path.read_text())
        assert [r["images"] for r in table["fractions"]] == [N_IMAGES // 2, N_IMAGES]
        assert len(lines[n]["points"].split()) == len(table["fractions"])
        assert f"{table['disc']} (halves {table['split_half']['jaccard']:.2f})" in text
    for path, null_path in zip(run_dir["bb"], run_dir["null_bb"], strict=True):
        bb, null = pd.read_csv(path), pd.read_csv(null_path)
        disc = bb["disc"].iloc[0]
        expected = (f"{len(bb):,} ({(bb['q'] <= 0.05).sum():,} at q \u2264 0.05; "
                    f"null {null.groupby('null').size().mean():,.0f})")
        assert f"best buddies with {disc}" in text and expected in text
    c = pd.read_csv(run_dir["concepts"], dtype={"layer": str})
    bbs = pd.concat([pd.read_csv(p, dtype={"gan_layer": str, "disc_layer": str})
                     for p in run_dir["bb"]])
    for n, members in c.groupby("concept"):
        gan = set(zip(members.loc[members.role == "gan", "layer"],
                      members.loc[members.role == "gan", "channel"], strict=True))
        disc = set(zip(members.loc[members.role == "disc", "model"],
                       members.loc[members.role == "disc", "layer"],
                       members.loc[members.role == "disc", "channel"], strict=True))
        q = max(r.q for r in bbs.itertuples() if (r.gan_layer, r.gan_channel) in gan
                and (r.disc, r.disc_layer, r.disc_channel) in disc)
        shown = "q < 0.001" if q < 0.001 else f"q {q:.3f}"
        section = text.split(f'id="concept-{n}-title"')[1].split("</header>")[0]
        assert shown in section
        # each D column: its shown unit's r and the q of that unit's best pair in the concept
        heads = text.split(f'id="concept-{n}-title"')[1].split("</thead>")[0]
        checked = 0
        for model, layer, channel in sorted(disc):
            cell = f"<b>{model}</b><code>{layer}:{channel}</code>"
            if cell in heads:  # the unit its D column shows
                q = min(r.q for r in bbs.itertuples() if (r.gan_layer, r.gan_channel) in gan
                        and (r.disc, r.disc_layer, r.disc_channel) == (model, layer, channel))
                after = heads.split(cell)[1].split("</th>")[0]
                assert ("q < 0.001" if q < 0.001 else f"q {q:.3f}") in after
                checked += 1
        assert checked == len(DISCS)


def test_each_concept_shows_the_label_its_units_dissect_as(run_dir):
    ious = pd.concat([pd.read_csv(p, dtype={"layer": str}) for p in run_dir["dissections"]])
    c = pd.read_csv(run_dir["concepts"], dtype={"layer": str})
    text = run_dir["dictionary"].read_text()
    for n, members in c.groupby("concept"):
        rows = ious.merge(members[["model", "layer", "channel"]])
        mean = rows.groupby("label")["iou"].mean()
        section = text.split(f'id="concept-{n}-title"')[1].split("</header>")[0]
        assert f"{mean.idxmax()} (IoU {mean.max():.3f}, <span title=" in section
        label = rows[rows["label"] == mean.idxmax()]
        at_position = (label["template_iou"] >= label["iou"]).sum()
        assert f">{'position' if 2 * at_position > len(label) else 'part'}</span>)" in section


def test_examples_are_the_most_active_images_and_maps_are_normalised(run_dir):
    s = Samples(run_dir["samples"])
    ds = open_match_store(run_dir["self"])
    stats = unit_stats(ds, "gan", GAN)
    units = s.units[3:6]
    z = np.mean([(s.activation[:, s.column[u]] - stats[u][0]) / stats[u][1] for u in units], 0)
    assert s.top_images(units, stats, 4) == [int(i) for i in s.ids[np.argsort(-z)[:4]]]
    maps = torch.rand(2, 8, 8)
    out = normalise_maps(maps, np.array([0.5, 0.2]), np.array([2.0, 0.0]), 16)
    ref = torch.nn.functional.interpolate(
        torch.stack([(maps[0] - 0.5) / 2, maps[1] - 0.2])[:, None], size=(16, 16),
        mode="bilinear", align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)  # a dead unit's std counts as 1
    rgba = heat_rgba(np.array([[[-1.0, 0.0, 2.5, 5.0, 9.0]]]))[0, 0]
    assert (np.diff(rgba[1:4, 3].astype(int)) > 0).all() and (rgba[0] == rgba[1]).all()
    assert (rgba[-1] == rgba[-2]).all() and rgba[-1, 0] > rgba[-1, 2]  # saturates red


def test_pairwise_page_lists_pairs_by_correlation(run_dir):
    bb = pd.read_csv(run_dir["bb"][0])
    page = Tags(run_dir["pairwise"].read_text())
    items = page.find("article", class_="item")
    assert len(items) == min(40, len(bb))
    corr = [float(i["data-corr"]) for i in items]
    assert corr == sorted(corr, reverse=True)
    np.testing.assert_allclose(corr, np.sort(bb["corr"].to_numpy())[::-1][:len(items)], atol=1e-4)
    assert len([a for a in page.find("img") if "heat" in a.get("class", "")]) == 2 * 3 * len(items)
    text = run_dir["pairwise"].read_text()
    top = bb.sort_values("corr", ascending=False, kind="stable").iloc[0]
    first = text.split('aria-label="pair 1"')[1].split("</header>")[0]
    assert f"r {top['corr']:.2f}, " + ("q < 0.001" if top.q < 0.001 else f"q {top.q:.3f}") \
        in first
    assert page.find("rect", class_="null")


def test_steps_reject_mismatched_inputs(run_dir, tmp_path, capsys):
    p = run_dir
    torch.manual_seed(99)
    other = tmp_path / "other-gan.safetensors"
    state = models.get(GAN).build().state_dict()
    # another generator that draws other images: two random inits of this one both draw
    # near-uniform grey (BatchNorm at its initial statistics), so shift its output
    state["to_rgb.bias"] += 1.0
    save_file({k: v.contiguous() for k, v in state.items()}, str(other))
    bad = weight_args({**p["weights"], GAN: other})
    assert run(dictionary.main, dictionary_argv(p, bad, tmp_path / "d.html")) == 2
    assert "does not reproduce the sampled images" in capsys.readouterr().err
    assert not (tmp_path / "d.html").exists()
    assert run(pairwise.main, ["--matches", str(p["matches"][0]), "--bestbuddies",
                               str(p["bb"][1]), "--samples", *map(str, p["samples"]),
                               "--out", str(tmp_path / "p.html")]) == 2
    assert "the match store" in capsys.readouterr().err
    with pytest.raises(UserError, match="NAME=PATH"):
        dictionary.main(dictionary_argv(p, ["--weights", "no-equals-sign"], tmp_path / "x.html"))


# --- the controls: untrained twins and pixels ----------------------------------------------

HOSTILE = '<script>alert("x")</script>'
TWINS = 2


@pytest.fixture(scope="session")
def controls_dir(run_dir):
    """Made-up controls of the tiny run and both pages built with them: concept 1 learned
    (its pairs gain 1.0 over the twins at q 0.001), concept 2 explained by a pixel channel
    with a hostile name (pixel r 0.999), the others architecture (pixel r -0.2); twin s of
    each D finds the first len / (s + 1) of D's best buddies; each unit table has an extra G
    unit whose layer is hostile."""
    out = run_dir["out"] / "controls"
    out.mkdir()
    c = pd.read_csv(run_dir["concepts"], dtype={"layer": str})
    concept_of = {(r.layer, r.channel): r.concept for r in c[c.role == "gan"].itertuples()}
    rng = np.random.default_rng(0)
    paths = {"pairs": [], "units": [], "twins": [], "out": out}
    for match_path, bb_path in zip(run_dir["matches"], run_dir["bb"], strict=True):
        bb = pd.read_csv(bb_path, dtype={"gan_layer": str, "disc_layer": str})
        disc = bb["disc"].iloc[0]
        concept = np.array([concept_of.get(k, 0) for k in zip(bb.gan_layer, bb.gan_channel,
                                                               strict=True)])
        learned, pixels = concept == 1, concept == 2
        bb["delta"] = np.where(learned, 1.0, 0.0)
        bb["r_twins"] = np.tanh(np.arctanh(bb["corr"]) - bb["delta"])
        bb["p_learned"] = bb["q_learned"] = np.where(learned, 0.001, 0.6)
        bb["pixel_r"] = np.where(pixels, 0.999, -0.2)  # the tiny run's r is low
        bb["pixel_channel"] = np.where(pixels, HOSTILE, "rgb R")
        paths["pairs"].append(out / f"{disc}.csv")
        bb.to_csv(paths["pairs"][-1], index=False)
        units = Best(match_path).units.to_frame(index=False)
        units.loc[len(units)] = [HOSTILE, 0]
        units["r_disc"] = rng.uniform(0.2, 0.9, len(units))
        units["r_twins"] = units["r_disc"] + rng.uniform(-0.1, 0.1, len(units))
        units["delta"] = np.arctanh(units["r_disc"]) - np.arctanh(units["r_twins"])
        units["twin_delta"] = rng.normal(0, 0.05, len(units))
        units["pixel_r"], units["pixel_channel"] = 0.05, "rgb R"
        paths["units"].append(out / f"{disc}-units.csv")
        units.to_csv(paths["units"][-1], index=False)
        for seed in range(1, TWINS + 1):
            twin = bb.loc[:len(bb) // (seed + 1) - 1, ["gan", "gan_layer", "gan_channel",
                                                       "disc", "disc_layer", "disc_channel",
                                                       "corr", "q"]].assign(
                disc=f"twin{seed}:{disc}")
            paths["twins"].append(out / f"twin{seed}:{disc}.csv")
            twin.to_csv(paths["twins"][-1], index=False)
    paths["dictionary"] = out / "shapes.html"
    assert run(dictionary.main, [*dictionary_argv(run_dir, out=paths["dictionary"]),
                                 "--controls", *map(str, paths["pairs"]), "--control-units",
                                 *map(str, paths["units"]), "--twin-bestbuddies",
                                 *map(str, paths["twins"])]) == 0
    # the pairwise page's table: its most correlated pair's pixel channel hostile too
    top = pd.read_csv(paths["pairs"][0], dtype={"gan_layer": str, "disc_layer": str})
    top.loc[top["corr"].idxmax(), "pixel_channel"] = HOSTILE
    paths["pairwise_controls"] = out / "pairwise-controls.csv"
    top.to_csv(paths["pairwise_controls"], index=False)
    paths["pairwise"] = out / f"{DISCS[0]}.html"
    assert run(pairwise.main, ["--matches", str(run_dir["matches"][0]), "--bestbuddies",
                               str(run_dir["bb"][0]), "--controls",
                               str(paths["pairwise_controls"]),
                               "--samples", *map(str, run_dir["samples"]),
                               *weight_args(run_dir["weights"]), "--examples", "3",
                               "--max-pairs", "40", "--device", "cpu",
                               "--out", str(paths["pairwise"])]) == 0
    return paths


def svgs(text, title_part):
    """The inline charts whose title holds `title_part`."""
    return [s for s in re.findall(r"<svg .*?</svg>", text) if title_part in
            re.search(r"<title>(.*?)</title>", s).group(1)]


def test_each_concept_shows_its_verdict(run_dir, controls_dir):
    text = controls_dir["dictionary"].read_text()
    c = pd.read_csv(run_dir["concepts"], dtype={"layer": str})
    assert c.concept.nunique() >= 3
    for n in sorted(c.concept.unique()):
        section = text.split(f'id="concept-{n}-title"')[1].split("</section>")[0]
        badges = re.findall(r'<span class="verdict v-(\w+)"', section)
        expected = {1: "learned", 2: "pixels"}.get(n, "architecture")
        assert badges == [expected], (n, badges)
        item = Tags(text).find("section", id=f"concept-{n}")[0]
        assert expected in item["data-search"].split()  # the search box finds verdicts
        line = section.split('<p class="verdict-line">')[1].split("</p>")[0]
        for path in controls_dir["pairs"]:
            disc = pd.read_csv(path)["disc"].iloc[0]
            gain = 1.0 if n == 1 else 0.0
            members = concept_members(c, n, disc, pd.read_csv(path, dtype={
                "gan_layer": str, "disc_layer": str}))
            passed = len(members) if n == 1 else 0
            assert f"{disc} {gain:+.2f} ({passed} of {len(members)} pairs learned)" in line
        channel = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" if n == 2 else "rgb R"
        r = 0.999 if n == 2 else -0.2
        assert f"best pixel channel <code>{channel}</code> (r {r:.2f})" in line
    for meaning in ("learned", "pixels", "architecture"):  # the verdicts are explained
        assert f'<li><span class="verdict v-{meaning}">{meaning}</span>' in text
    assert "Verdicts: 1 learned, 1 pixels, " in text


def concept_members(c, n, disc, pairs):
    """Rows of a pair table whose G and D units are both in concept n."""
    rows = c[c.concept == n]
    g = set(zip(rows.layer[rows.role == "gan"], rows.channel[rows.role == "gan"], strict=True))
    d = set(zip(rows.model[rows.role == "disc"], rows.layer[rows.role == "disc"],
                rows.channel[rows.role == "disc"], strict=True))
    return pairs[[(r.gan_layer, r.gan_channel) in g and (disc, r.disc_layer, r.disc_channel)
                  in d for r in pairs.itertuples()]]


def test_scatter_has_a_point_per_g_unit_above_or_below_the_diagonal(controls_dir):
    text = controls_dir["dictionary"].read_text()
    for path in controls_dir["units"]:
        units = pd.read_csv(path, dtype={"gan_layer": str})
        disc = pd.read_csv(controls_dir["pairs"][controls_dir["units"].index(path)])["disc"][0]
        (svg,) = svgs(text, f"units: {disc} against its twins")
        (line,) = Tags(svg).find("line", class_="diag")
        x1, y1, x2, y2 = (float(line[k]) for k in ("x1", "y1", "x2", "y2"))
        assert x1 < x2 and y1 > y2  # from the lower left to the upper right
        points = Tags(svg).find("circle", class_="pt")
        assert len(points) == len(units)
        for point, unit in zip(points, units.itertuples(), strict=True):
            cx, cy = float(point["cx"]), float(point["cy"])
            on_line = y1 + (cx - x1) / (x2 - x1) * (y2 - y1)
            if abs(unit.r_disc - unit.r_twins) > 0.02:  # away from the diagonal, on its side
                assert (cy < on_line) == (unit.r_disc > unit.r_twins)
        # the hostile layer name is a tooltip, escaped
        assert f"{GAN} &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;:0: {disc} r" in svg
    assert '<script>alert("x")' not in text


def test_delta_histogram_sets_pairs_against_the_twins_spread(controls_dir):
    text = controls_dir["dictionary"].read_text()
    for pairs_path, units_path in zip(controls_dir["pairs"], controls_dir["units"],
                                      strict=True):
        pairs, units = pd.read_csv(pairs_path), pd.read_csv(units_path)
        disc = pairs["disc"].iloc[0]
        (svg,) = svgs(text, f"{disc}: gain over its twins")
        floor = 2 * units["twin_delta"].std(ddof=1)
        assert f"(floor {floor:.2f})" in svg
        page = Tags(svg)
        assert page.find("rect", class_="bb") and page.find("rect", class_="twin")
        assert f"best buddies ({len(pairs):,})" in svg
        assert f"twin vs twins ({len(units):,})" in svg
        # the twins' best-buddy counts beside D's, in the table under the charts
        section = text.split('<section id="controls">')[1].split("</section>")[0]
        row = section.split(f"<td><b>{disc}</b></td>")[1].split("</tr>")[0]
        assert f"<td>{len(pairs):,} ({(pairs['q'] <= 0.05).sum():,} at q" in row
        for seed in range(1, TWINS + 1):
            n = len(pairs) // (seed + 1)
            assert f"twin{seed}:{disc} {n:,} (" in row
        assert f"<td>{(pairs['q_learned'] <= 0.05).sum():,}</td>" in row


def test_pairwise_cards_show_the_controls(controls_dir):
    text = controls_dir["pairwise"].read_text()
    pairs = pd.read_csv(controls_dir["pairwise_controls"], dtype={"gan_layer": str,
                                                                  "disc_layer": str})
    pairs = pairs.sort_values("corr", ascending=False, kind="stable").reset_index(drop=True)
    assert pairs["pixel_channel"].iloc[0] == HOSTILE
    cards = text.split('aria-label="pair ')[1:]
    assert len(cards) == min(40, len(pairs))
    for card, r in zip(cards, pairs.itertuples(), strict=False):
        meta = card.split('<span class="meta">')[1].split("</span>")[0]
        assert f"<code>{r.gan_layer}:{r.gan_channel}</code>" in meta
        q = "q_learned < 0.001" if r.q_learned < 0.001 else f"q_learned {r.q_learned:.3f}"
        channel = escape(r.pixel_channel)
        assert (f", twins r {r.r_twins:.2f}, \u0394z {r.delta:+.2f}, {q}, pixels "
                f"<code>{channel}</code> r {r.pixel_r:.2f}") in meta
    assert '<script>alert("x")' not in text
    assert f"{(pairs['q_learned'] <= 0.05).sum():,}</b>learned, q_learned" in text
    assert f"{pairs['delta'].median():+.2f}</b>median \u0394z over the twins" in text


def test_controls_options_are_checked(run_dir, controls_dir, tmp_path, capsys):
    argv = dictionary_argv(run_dir, out=tmp_path / "d.html")
    swapped = [*argv, "--controls", *map(str, controls_dir["pairs"][::-1]),
               "--control-units", *map(str, controls_dir["units"])]
    assert run(dictionary.main, swapped) == 2
    assert "in the order of --matches" in capsys.readouterr().err
    assert run(dictionary.main, [*argv, "--twin-bestbuddies", str(controls_dir["twins"][0])]) == 2
    assert "need --controls" in capsys.readouterr().err
    assert not (tmp_path / "d.html").exists()
    assert run(pairwise.main, ["--matches", str(run_dir["matches"][0]), "--bestbuddies",
                               str(run_dir["bb"][0]), "--controls",
                               str(controls_dir["pairs"][1]), "--samples",
                               *map(str, run_dir["samples"]), "--out",
                               str(tmp_path / "p.html")]) == 2
    assert f"not {GAN} x {DISCS[0]}" in capsys.readouterr().err


def test_a_concept_without_twins_has_no_badge():
    line = concept_line({"concept": 1, "verdict": None, "delta": {}, "pixel_channel": "rgb R",
                         "pixel_r": 0.31})
    assert "verdict v-" not in line and "<code>rgb R</code> (r 0.31)" in line
    assert concept_line(None) == ""


# --- in the browser ----------------------------------------------------------------------

def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


@pytest.fixture(scope="session")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def open_page(driver, path):
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.set_window_size(1280, 900)
    driver.get(path.as_uri())
    driver.execute_async_script("const done = arguments[0]; if (document.readyState === "
                                "'complete') done(); else addEventListener('load', () => done())")


def check_clean_load(driver, path):
    """No console messages of level warning or above, no request but the file and data: URLs."""
    problems = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    outside = [u for u in urls if not (u.startswith("data:") or u == path.as_uri())]
    assert not outside, outside


def decode_all(driver):
    """Load every lazy image, wait for each to decode; returns (count, broken alts)."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        window.rosetta.loadAll();
        const imgs = Array.from(document.images);
        Promise.allSettled(imgs.map((i) => i.decode())).then(() => done(
            [imgs.length, imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map(
                (i) => i.alt)]));""")


def visible(driver, selector):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".filter((e) => e.offsetParent !== null).map((e) => e.id)", selector)


def test_dictionary_in_chromium(browser, run_dir):
    c, first = concept_table(run_dir)
    n = c.concept.nunique()
    open_page(browser, run_dir["dictionary"])
    lazy = browser.execute_script(
        "return [document.images.length, Array.from(document.images).filter((i) => i.src).length]")
    assert lazy[1] < lazy[0], "images below the fold wait until they are scrolled to"
    assert len(visible(browser, "section.item")) == n
    count, broken = decode_all(browser)
    assert count > n * EXAMPLES and not broken
    check_clean_load(browser, run_dir["dictionary"])

    png = Image.open(io.BytesIO(base64.b64decode(browser.get_screenshot_as_base64())))
    pixels = np.asarray(png.convert("RGB"), dtype=float)
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500

    # minimum correlation: exactly the concepts at or above it stay
    cut = float(np.median(first["corr"]))
    browser.execute_script("const s = document.getElementById('min-corr'); s.value = arguments[0];"
                           " s.dispatchEvent(new Event('input'))", f"{cut:.2f}")
    expected = [f"concept-{k}" for k, r in first["corr"].items() if r >= round(cut, 2) - 1e-9]
    assert visible(browser, "section.item") == expected and 0 < len(expected) < n
    assert browser.find_element("id", "count").text == f"{len(expected)} of {n} concepts shown"
    browser.find_element("id", "reset").click()
    assert len(visible(browser, "section.item")) == n

    # search by unit: the concepts that hold it
    label = f"{first.iloc[0]['layer']}:{first.iloc[0]['channel']}"
    browser.find_element("id", "search").send_keys(label)
    holders = {f"concept-{k}" for k in c[(c.model == GAN) & (
        c.layer + ":" + c.channel.astype(str) == label)].concept}
    assert set(visible(browser, "section.item")) == holders
    browser.find_element("id", "reset").click()

    # layer filter and model filter
    layer = f"{DISCS[1]}/{c[c.model == DISCS[1]].layer.iloc[0]}"
    browser.execute_script("const s = document.getElementById('layer'); s.value = arguments[0];"
                           " s.dispatchEvent(new Event('input'))", layer)
    with_layer = {f"concept-{k}" for k in c[c.model + "/" + c.layer == layer].concept}
    assert set(visible(browser, "section.item")) == with_layer
    browser.find_element("id", "reset").click()
    heads = f"th[data-model='{DISCS[0]}']"
    assert len(browser.find_elements("css selector", heads)) == n
    browser.find_element("css selector", f"input[value='{DISCS[0]}']").click()
    assert not any(e.is_displayed() for e in browser.find_elements("css selector", heads))
    browser.find_element("id", "reset").click()

    # keyboard: j goes to the next concept, k back
    body = browser.find_element("tag name", "body")
    body.send_keys("j")
    assert browser.execute_script("return document.activeElement.id") == "concept-1"
    body.send_keys("j")
    assert browser.execute_script("return document.activeElement.id") == "concept-2"
    browser.switch_to.active_element.send_keys("k")
    assert browser.execute_script("return document.activeElement.id") == "concept-1"

    # per-image view: switching the image shows another panel of every concept's map
    buttons = browser.find_elements("css selector", ".chooser button")
    assert len(buttons) == PER_IMAGE
    buttons[1].click()
    panels = visible(browser, ".image-panel")
    assert panels == [buttons[1].get_attribute("data-panel")]
    assert len(browser.find_elements("css selector", f"#{panels[0]} .tile")) == n

    # phone width: nothing wider than the screen but the grids, which scroll on their own
    browser.set_window_size(390, 844)
    width = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1] + 1
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('sidebar')).position") == "static"


def test_pairwise_in_chromium(browser, run_dir):
    open_page(browser, run_dir["pairwise"])
    items = visible(browser, "article.item")
    assert items and items[0] == "pair-1"
    count, broken = decode_all(browser)
    assert count >= 4 * len(items) and not broken
    check_clean_load(browser, run_dir["pairwise"])
    corr = browser.execute_script("return Array.from(document.querySelectorAll('article.item'))"
                                  ".map((e) => parseFloat(e.dataset.corr))")
    browser.execute_script("const s = document.getElementById('min-corr'); s.value = arguments[0];"
                           " s.dispatchEvent(new Event('input'))", f"{corr[len(corr) // 2]:.2f}")
    assert 0 < len(visible(browser, "article.item")) < len(items)


def test_controls_in_chromium(browser, run_dir, controls_dir):
    """The page with the controls loads cleanly; each concept's badge shows; searching a
    verdict keeps its concepts."""
    n = pd.read_csv(run_dir["concepts"]).concept.nunique()
    open_page(browser, controls_dir["dictionary"])
    check_clean_load(browser, controls_dir["dictionary"])
    assert browser.find_element("id", "controls").is_displayed()
    badges = browser.find_elements("css selector", "section.item .verdict")
    assert [b.text for b in badges] == ["learned", "pixels", *["architecture"] * (n - 2)]
    assert all(b.is_displayed() for b in badges)
    browser.find_element("id", "search").send_keys("learned")
    assert visible(browser, "section.item") == ["concept-1"]
    browser.find_element("id", "reset").click()


def test_rendering_reuses_samples(run_dir):
    """Only the example and per-image images go through the models again."""
    c = pd.read_csv(run_dir["concepts"])
    html, summary = build_dictionary(
        "shapes", str(run_dir["concepts"]), list(map(str, run_dir["samples"])),
        str(run_dir["self"]), list(map(str, run_dir["matches"])), list(map(str, run_dir["bb"])),
        run_dir["weights"], K, EXAMPLES, null_bestbuddies=list(map(str, run_dir["null_bb"])),
        stability=list(map(str, run_dir["stability"])),
        dissections=list(map(str, run_dir["dissections"])))
    assert summary["concepts"] == c.concept.nunique()
    assert summary["images"] <= min(N_IMAGES, summary["concepts"] * EXAMPLES + 4)
    assert html == run_dir["dictionary"].read_text()  # deterministic


def test_browser_checks_catch_errors_and_requests(browser, tmp_path):
    """The harness itself: a console error or a request to the network fails the checks."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>x</title><img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.error('boom')</script>")
    open_page(browser, page)
    with pytest.raises(AssertionError):
        check_clean_load(browser, page)
    page.write_text("<!doctype html><title>x</title><img src='http://127.0.0.1:9/x.png'>")
    open_page(browser, page)
    browser.get_log("browser")  # drop the failed load's console line: only the request is left
    with pytest.raises(AssertionError, match="127.0.0.1"):
        check_clean_load(browser, page)
