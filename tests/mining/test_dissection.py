"""Dissection: IoU of thresholded unit maps with label masks, against hand computations."""

import numpy as np
import pandas as pd
import pytest
import torch

from rosetta_steps import dissect
from rosetta_steps.core import world
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.labels import boundary, label_masks, pixel_labels
from rosetta_steps.mining.dissection import concept_labels, iou_table, thresholds


def test_iou_by_hand():
    # one unit, 2 images of 2x2 maps at the masks' size (no resizing): values 1..8
    maps = {"l": torch.arange(1.0, 9.0).view(2, 1, 2, 2)}
    # quantile 0.7 of 8 values: the ceil(5.6) = 6th smallest, 6; the unit fires on 7 and 8
    assert thresholds(maps, 0.7)["l"].item() == 6.0
    a = np.array([[[0, 0], [0, 0]], [[1, 1], [0, 0]]], dtype=bool)  # pixels of 5, 6
    b = np.array([[[0, 0], [0, 0]], [[0, 1], [1, 1]]], dtype=bool)  # pixels of 6, 7, 8
    table = iou_table("M", maps, {"a": a, "b": b}, quantile=0.7).set_index("label")
    assert table.loc["a", "iou"] == 0.0  # fired {7, 8} vs {5, 6}
    assert table.loc["b", "iou"] == pytest.approx(2 / 3)  # {7, 8} & {6, 7, 8}
    assert set(table["threshold"]) == {6.0}


def test_maps_are_resized_to_the_masks_before_thresholding():
    torch.manual_seed(0)
    x = torch.rand(3, 2, 4, 4)
    labels = {"l": np.random.default_rng(0).random((3, 8, 8)) > 0.5}
    got = iou_table("M", {"l": x}, labels, quantile=0.9).set_index("channel")["iou"]
    t = thresholds({"l": x}, 0.9)["l"]
    up = torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
    for ch in range(2):
        fired = (up[:, ch] > t[ch]).numpy()
        expected = (fired & labels["l"]).sum() / (fired | labels["l"]).sum()
        assert got[ch] == pytest.approx(expected)


def test_world_labels_are_consistent():
    batch = world.render(16, 0)
    labels = label_masks(batch)
    objects = batch.masks.any(axis=1)
    assert (labels["object"] == objects).all() and (labels["background"] == ~objects).all()
    colours = np.any([labels[f"colour:{c}"] for c in world.COLORS], axis=0)
    shapes = np.any([labels[f"shape:{s}"] for s in world.SHAPES], axis=0)
    assert (colours == objects).all() and (shapes == objects).all()
    assert (labels["contour"] <= objects).all() and 0 < labels["contour"].sum() < objects.sum()
    # the pixels alone find the objects and their colours
    found = pixel_labels(batch.images)
    for name in ("object", *(f"colour:{c}" for c in world.COLORS)):
        union = (found[name] | labels[name]).sum()
        assert union == 0 or (found[name] & labels[name]).sum() / union > 0.9, name


def test_boundary_by_hand():
    regions = np.array([[[0, 1, 1], [0, 1, 2], [0, 0, 2]]])
    # every object pixel touches the background or the other object; the border is no edge
    assert boundary(regions).astype(int).tolist() == [[[0, 1, 1], [0, 1, 1], [0, 0, 1]]]
    assert not boundary(np.ones((1, 3, 3), dtype=int)).any()


def test_concept_labels_take_the_largest_mean_iou():
    concepts = pd.DataFrame({"concept": [1, 1, 2], "model": ["G", "D", "G"],
                             "layer": ["g", "d", "g"], "channel": [0, 3, 1],
                             "role": ["gan", "disc", "gan"], "corr": [.5, .5, .4]})
    d = pd.DataFrame({"model": "D", "layer": "d", "channel": [3, 3], "label": ["red", "ring"],
                      "iou": [0.2, 0.3], "threshold": 1.0})
    g = pd.DataFrame({"model": "G", "layer": "g", "channel": [0, 0], "label": ["red", "ring"],
                      "iou": [0.3, 0.0], "threshold": 1.0})
    # concept 1: red (0.2 + 0.3) / 2 = 0.25 > ring 0.15; concept 2: no dissected unit
    assert concept_labels(concepts, [d, g]) == [
        {"concept": 1, "label": "red", "iou": 0.25, "units": 2},
        {"concept": 2, "label": None, "iou": None, "units": 0}]


@pytest.mark.parametrize("model", ["shapes-cnn-sup", "shapes-gan"])
def test_cli_dissects_a_model(model, tmp_path):
    out = tmp_path / "d.csv"
    assert run(dissect.main, ["--model", model, "--weights", f"{model}=random", "--images", "8",
                              "--batch-size", "4", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    labels = set(table["label"])
    assert {"object", "background", "contour", "colour:red"} <= labels
    assert ("shape:disk" in labels) == (model != "shapes-gan")  # pixels cannot show shapes
    assert table["iou"].between(0, 1).all()
    assert len(table) == table[["layer", "channel"]].drop_duplicates().shape[0] * len(labels)


def test_a_quantile_outside_zero_one_is_refused(tmp_path, capsys):
    with pytest.raises(UserError, match="quantile"):
        iou_table("M", {"l": torch.zeros(1, 1, 2, 2)}, {"a": np.zeros((1, 2, 2), bool)}, 1.0)
    assert run(dissect.main, ["--model", "shapes-cnn-sup", "--weights", "shapes-cnn-sup=random",
                              "--images", "0", "--out", str(tmp_path / "d.csv")]) == 2
    assert "images >= 1" in capsys.readouterr().err
