"""The concept verdicts (learned, pixels, architecture) on constructed controls tables, by
the rule of `mining.verdicts`; the decoy and per-D summaries of the discovery metric."""

import numpy as np
import pandas as pd
import pytest

from rosetta_steps.mining.verdicts import (
    PIXEL_MARGIN,
    concept_verdicts,
    decoy_summary,
    pair_summary,
    verdict_counts,
    with_controls,
)


def _concepts(rows):
    return pd.DataFrame(rows, columns=["concept", "model", "layer", "channel", "role", "corr"])


def _pairs(disc, rows):
    """rows: (gan_channel, disc_channel, corr, delta, q_learned, pixel_r)"""
    return pd.DataFrame([
        {"gan": "G", "gan_layer": "g", "gan_channel": gc, "disc": disc, "disc_layer": "l",
         "disc_channel": dc, "corr": r, "r_twins": np.nan, "delta": delta, "p_learned": q,
         "q_learned": q, "pixel_r": pixel, "pixel_channel": "hsv saturation" if gc % 2
         else "rgb R"} for gc, dc, r, delta, q, pixel in rows])


# concept 1: G units 0-2, A's unit 0, B's unit 0; concept 2: G units 3-4, A 1, B 1;
# concept 3: G unit 5, A 2, B 2
CONCEPTS = _concepts(
    [(1, "G", "g", c, "gan", 0.8) for c in (0, 1, 2)]
    + [(1, d, "l", 0, "disc", 0.8) for d in "AB"]
    + [(2, "G", "g", c, "gan", 0.8) for c in (3, 4)]
    + [(2, d, "l", 1, "disc", 0.8) for d in "AB"]
    + [(3, "G", "g", 5, "gan", 0.8)] + [(3, d, "l", 2, "disc", 0.8) for d in "AB"])


def _tables(a1, b1, pixel2=0.78, pixel3=0.3):
    a = _pairs("A", [(0, 0, 0.8, *a1[0], 0.2), (1, 0, 0.8, *a1[1], 0.2),
                     (2, 0, 0.8, *a1[2], 0.2),
                     (3, 1, 0.8, 0.1, 0.5, pixel2), (4, 1, 0.8, 0.1, 0.5, pixel2),
                     (5, 2, 0.8, 0.1, 0.5, pixel3)])
    b = _pairs("B", [(0, 0, 0.8, *b1, 0.2),
                     (3, 1, 0.8, 0.1, 0.5, pixel2), (4, 1, 0.8, 0.1, 0.5, pixel2),
                     (5, 2, 0.8, 0.1, 0.5, pixel3)])
    return [a, b]


PASS, FAIL_Q, SMALL = (0.5, 0.01), (0.5, 0.2), (0.05, 0.01)


def test_each_verdict_by_the_rule():
    floors = {"A": 0.1, "B": 0.1}
    out = concept_verdicts(CONCEPTS, _tables([PASS, PASS, FAIL_Q], PASS), floors)
    assert [v["verdict"] for v in out] == ["learned", "pixels", "architecture"]
    first = out[0]
    assert first["delta"]["A"] == {"delta": 0.5, "pairs": 3, "passed": 2}
    assert first["delta"]["B"] == {"delta": 0.5, "pairs": 1, "passed": 1}
    assert first["pixel_r"] == pytest.approx(0.2)
    assert first["pixel_channel"] == "rgb R"  # G units 0 and 2 (even) against 1
    assert out[1]["pixel_channel"] in ("rgb R", "hsv saturation")
    assert verdict_counts(out) == {"learned": 1, "pixels": 1, "architecture": 1}


@pytest.mark.parametrize("a1, b1, floors, learned", [
    ([PASS, FAIL_Q, FAIL_Q], PASS, {"A": 0.1, "B": 0.1}, False),  # 1 of 3: not more than half
    ([PASS, PASS, FAIL_Q], FAIL_Q, {"A": 0.1, "B": 0.1}, False),  # B fails: every D must pass
    ([PASS, PASS, PASS], PASS, {"A": 0.6, "B": 0.1}, False),  # delta 0.5 under A's floor
    ([SMALL, SMALL, SMALL], SMALL, {"A": 0.1, "B": 0.1}, False),  # q passes, delta is small
    ([PASS, PASS, PASS], PASS, {"A": None, "B": 0.1}, False),  # no floor: nothing passes
    ([PASS, PASS, FAIL_Q], PASS, {"A": 0.1, "B": 0.1}, True),
])
def test_learned_needs_more_than_half_of_the_pairs_of_every_d(a1, b1, floors, learned):
    out = concept_verdicts(CONCEPTS, _tables(a1, b1), floors)
    assert (out[0]["verdict"] == "learned") is learned


def test_the_pixel_margin():
    r = np.tanh(np.arctanh(0.8) - PIXEL_MARGIN)  # exactly at the margin: pixels
    tables = _tables([FAIL_Q] * 3, FAIL_Q, pixel2=r + 1e-6)
    assert concept_verdicts(CONCEPTS, tables, {})[1]["verdict"] == "pixels"
    tables = _tables([FAIL_Q] * 3, FAIL_Q, pixel2=r - 1e-3)
    assert concept_verdicts(CONCEPTS, tables, {})[1]["verdict"] == "architecture"


def test_without_twins_no_verdict_and_without_pixels_no_pixel_verdict():
    tables = _tables([PASS] * 3, PASS)
    for t in tables:
        t["delta"] = t["q_learned"] = np.nan
    assert [v["verdict"] for v in concept_verdicts(CONCEPTS, tables, {})] == [None] * 3
    tables = _tables([FAIL_Q] * 3, FAIL_Q)
    for t in tables:
        t["pixel_r"] = np.nan
        t["pixel_channel"] = None
    out = concept_verdicts(CONCEPTS, tables, {"A": 0.1, "B": 0.1})
    assert [v["verdict"] for v in out] == ["architecture"] * 3
    assert out[0]["pixel_channel"] is None and out[0]["pixel_r"] is None


def test_summaries():
    pairs = _tables([PASS, PASS, FAIL_Q], PASS)[0]
    units = pd.DataFrame({"twin_delta": [0.1, -0.1, 0.3, -0.3]})
    twins = [pd.DataFrame({"q": [0.01, 0.2, 0.01]}), pd.DataFrame({"q": [0.5]})]
    s = pair_summary(pairs, units, twins)
    assert s["twins"]["best_buddies"]["per_twin"] == [3, 1]
    assert s["twins"]["best_buddies"]["mean"] == 2 and s["twins"]["best_buddies"]["min"] == 1
    assert s["twins"]["significant"] == [2, 0]
    assert s["median_delta"] == pytest.approx(0.3)  # of 0.5 0.5 0.5 0.1 0.1 0.1
    assert s["learned_share"] == pytest.approx(2 / 6)
    assert s["p_share"] == pytest.approx(2 / 6)  # p_learned equals q_learned in _pairs
    assert s["delta_floor"] == pytest.approx(2 * np.std([0.1, -0.1, 0.3, -0.3], ddof=1))
    d = decoy_summary(7, [pd.DataFrame({"concept": [1, 1, 2]}),
                          pd.DataFrame({"concept": [1, 2, 3, 4]})])
    assert d["observed"] == 7 and d["decoys"]["per_twin"] == [2, 4]
    assert d["decoys"]["mean"] == 3


def test_the_summary_gives_each_d_its_own_twins():
    """Twins go to the D they are of, also when one D's name ends another's (`resnet50` and
    `timm:resnet50`)."""
    concepts = _concepts([(1, "G", "g", 0, "gan", 0.8), (1, "A", "l", 0, "disc", 0.8),
                          (1, "timm:A", "l", 0, "disc", 0.8)])
    pairs = [_pairs(d, [(0, 0, 0.8, 0.5, 0.01, 0.2)]) for d in ("A", "timm:A")]
    units = [pd.DataFrame({"twin_delta": [0.1, -0.1]})] * 2
    twins = [pd.DataFrame({"disc": [name] * n}) for name, n in
             (("twin1:A", 3), ("twin2:A", 4), ("twin1:timm:A", 7), ("twin2:timm:A", 8))]
    summary = {"best_buddies": {"A": {}, "timm:A": {}}, "concepts": [{"concept": 1}]}
    out = with_controls(summary, concepts, pairs, units, twins, decoys=[])
    counts = {d: s["controls"]["twins"]["best_buddies"]["per_twin"]
              for d, s in out["best_buddies"].items()}
    assert counts == {"A": [3, 4], "timm:A": [7, 8]}
    assert out["concepts"][0]["verdict"] == "learned" and "decoy_concepts" not in out
