"""A dictionary's discoveries against the null model, on tables small enough to count by hand."""

import json

import pandas as pd
import pytest

from rosetta_steps import discovery
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.mining.buddies import COLUMNS
from rosetta_steps.mining.concepts import CONCEPT_COLUMNS


def table(disc, rows, null=None):
    """Best-buddy rows (G channel, D channel, corr, q) of layer 'g' x layer 'd'."""
    t = pd.DataFrame([{"gan": "G", "gan_layer": "g", "gan_channel": g, "disc": disc,
                       "disc_layer": "d", "disc_channel": d, "corr": c, "q": q}
                      for g, d, c, q in rows], columns=[*COLUMNS, "q"])
    if null is None:
        return t
    return t.drop(columns="q").assign(null=null)


OBSERVED = [table("A", [(0, 0, .9, .0), (1, 1, .8, .0), (2, 5, .3, .6)]),
            table("B", [(0, 3, .7, .01), (1, 4, .6, .2), (3, 3, .2, .9)])]
NULLS = [pd.concat([table("A", [(7, 1, .3, 0), (2, 2, .2, 0)], null=1),
                    table("A", [(2, 0, .25, 0)], null=2)]),
         pd.concat([table("B", [(2, 1, .3, 0), (7, 0, .1, 0)], null=1),
                    table("B", [(5, 5, .2, 0), (6, 2, .1, 0), (2, 3, .1, 0)], null=2)])]
# concept 1: G units 0 and 1 with A:0, A:1, B:3, B:4; concept 2: G unit 2 alone with A:5
CONCEPTS = pd.DataFrame([
    (1, "G", "g", 0, "gan", .8), (1, "G", "g", 1, "gan", .7),
    (1, "A", "d", 0, "disc", .9), (1, "A", "d", 1, "disc", .8),
    (1, "B", "d", 3, "disc", .7), (1, "B", "d", 4, "disc", .6),
    (2, "G", "g", 2, "gan", .3), (2, "A", "d", 5, "disc", .3)], columns=CONCEPT_COLUMNS)


def test_counts_against_the_null_by_hand():
    summary = discovery.discovery(OBSERVED, NULLS, CONCEPTS, level=0.05)
    a, b = summary["best_buddies"]["A"], summary["best_buddies"]["B"]
    assert (a["observed"], a["null"]["per_permutation"], a["significant"]) == (3, [2, 1], 2)
    assert (b["observed"], b["null"]["per_permutation"], b["significant"]) == (3, [2, 3], 1)
    assert a["null"]["mean"] == 1.5 and b["null"]["mean"] == 2.5
    # null Rosetta units: G units with a null buddy in A and in B, per permutation:
    # r=1: {7, 2} & {2, 7} = 2 units; r=2: {2} & {5, 6, 2} = 1 unit
    units = summary["rosetta_units"]
    assert units["observed"] == 3 and units["null"]["per_permutation"] == [2, 1]
    # G units with a q <= .05 pair in A ({0, 1}) and in B ({0}): unit 0
    assert units["significant"] == 1
    assert a["median_corr"] == 0.8 and a["null_max_corr"] == [0.3, 0.25]
    # concept 1 holds pairs (0, A0) (1, A1) (0, B3) (1, B4): q .0 .0 .01 .2
    assert summary["concepts"] == [
        {"concept": 1, "pairs": 4, "q_max": 0.2, "q_median": 0.005},
        {"concept": 2, "pairs": 1, "q_max": 0.6, "q_median": 0.6}]


def test_cli_writes_the_metric(tmp_path, capsys):
    paths = []
    for i, (t, n) in enumerate(zip(OBSERVED, NULLS, strict=True)):
        t.to_csv(tmp_path / f"bb{i}.csv", index=False)
        n.to_csv(tmp_path / f"null{i}.csv", index=False)
        paths.append((str(tmp_path / f"bb{i}.csv"), str(tmp_path / f"null{i}.csv")))
    CONCEPTS.to_csv(tmp_path / "c.csv", index=False)
    out = tmp_path / "d.json"
    argv = ["--bestbuddies", *(p[0] for p in paths), "--null-bestbuddies",
            *(p[1] for p in paths), "--concepts", str(tmp_path / "c.csv"), "--out", str(out)]
    assert run(discovery.main, [*argv, "--plot", str(tmp_path / "plot.json")]) == 0
    assert json.loads(out.read_text())["best_buddies"]["B"]["significant"] == 1
    # the bar chart's rows: observed and null mean (1.5 and 2.5, by hand above) per D
    assert json.loads((tmp_path / "plot.json").read_text()) == [
        {"disc": "A", "set": "observed", "best_buddies": 3},
        {"disc": "A", "set": "null", "best_buddies": 1.5},
        {"disc": "B", "set": "observed", "best_buddies": 3},
        {"disc": "B", "set": "null", "best_buddies": 2.5}]
    OBSERVED[0].drop(columns="q").to_csv(tmp_path / "bb0.csv", index=False)
    assert run(discovery.main, argv) == 2
    assert "without a q column" in capsys.readouterr().err


@pytest.mark.parametrize("level", ["0", "1.5"])
def test_a_level_outside_zero_one_is_refused(level, tmp_path, capsys):
    assert run(discovery.main, ["--bestbuddies", "a", "--null-bestbuddies", "b", "--concepts",
                                "c", "--level", level, "--out", str(tmp_path / "d.json")]) == 2
    assert "a q-value level is in (0, 1]" in capsys.readouterr().err


def test_stability_tables_join_their_d():
    table = {"gan": "G", "disc": "B", "k": 5, "rule": "mutual",
             "fractions": [{"shards": 1, "images": 8, "best_buddies": 3, "jaccard": 0.5}],
             "split_half": {"images": [4, 4], "best_buddies": [2, 3], "jaccard": 0.25}}
    summary = discovery.discovery(OBSERVED, NULLS, CONCEPTS, stability=[table])
    assert summary["best_buddies"]["B"]["stability"]["split_half"]["jaccard"] == 0.25
    assert "stability" not in summary["best_buddies"]["A"]
    with pytest.raises(UserError, match="a stability table of 'C'"):
        discovery.discovery(OBSERVED, NULLS, CONCEPTS, stability=[{**table, "disc": "C"}])


def test_dissections_label_the_concepts():
    ious = pd.DataFrame({"model": ["A", "A", "G"], "layer": ["d", "d", "g"],
                         "channel": [0, 0, 2], "label": ["red", "ring", "red"],
                         "iou": [0.4, 0.1, 0.2], "threshold": 1.0,
                         "template_iou": [0.1, 0.1, 0.3]})
    summary = discovery.discovery(OBSERVED, NULLS, CONCEPTS, dissections=[ious])
    first, second = summary["concepts"]
    assert (first["label"], first["iou"], first["placement"]) == ("red", 0.4, "part")  # A:0
    assert (second["label"], second["iou"], second["placement"]) == ("red", 0.2, "position")
    assert "label" not in discovery.discovery(OBSERVED, NULLS, CONCEPTS)["concepts"][0]
