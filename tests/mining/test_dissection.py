"""Dissection: IoU of thresholded unit maps with label masks, against hand computations."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

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
    # templates (mean masks): a [[.5, .5], [0, 0]], b [[0, .5], [.5, .5]]; the unit fires on
    # the bottom row of image 2 only. a: sum M T = 0. b: sum M T = .5 + .5 = 1, and
    # sum max(M, T) = 1.5 (image 1: T alone) + 0 + .5 + 1 + 1 (image 2) = 4
    assert table.loc["a", "template_iou"] == 0.0
    assert table.loc["b", "template_iou"] == pytest.approx(1 / 4)


def test_a_unit_at_a_fixed_place_is_a_position_one_that_follows_the_part_is_a_part():
    """8 images of 8 x 8: a 2 x 2 part at the top left in 4 of them, at the bottom right in
    the others. A unit that always fires at the top left matches the template (0.5 on both
    places) as well as the masks: IoU 16 / 48 both; one that fires on the part matches the
    masks exactly (IoU 1) and the template less (16 / 48)."""
    part = np.zeros((8, 8, 8), dtype=bool)
    part[:4, 1:3, 1:3] = True
    part[4:, 5:7, 5:7] = True
    fixed = np.zeros((8, 1, 8, 8), np.float32)
    fixed[:, 0, 1:3, 1:3] = 1
    follows = part[:, None].astype(np.float32)
    table = iou_table("M", {"fixed": torch.from_numpy(fixed),
                            "follows": torch.from_numpy(follows)}, {"part": part},
                      quantile=0.9).set_index("layer")
    assert table.loc["fixed", "iou"] == pytest.approx(1 / 3)
    assert table.loc["fixed", "template_iou"] == pytest.approx(1 / 3)  # >= iou: a position
    assert table.loc["follows", "iou"] == pytest.approx(1.0)
    assert table.loc["follows", "template_iou"] == pytest.approx(1 / 3)  # < iou: a part
    concepts = pd.DataFrame({"concept": [1, 2], "model": "M", "layer": ["fixed", "follows"],
                             "channel": 0, "role": "gan", "corr": 0.5})
    assert [c["placement"] for c in concept_labels(concepts, [table.reset_index()])] == [
        "position", "part"]


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
                      "iou": [0.2, 0.3], "threshold": 1.0, "template_iou": [0.2, 0.0]})
    g = pd.DataFrame({"model": "G", "layer": "g", "channel": [0, 0], "label": ["red", "ring"],
                      "iou": [0.3, 0.0], "threshold": 1.0, "template_iou": [0.1, 0.0]})
    # concept 1: red (0.2 + 0.3) / 2 = 0.25 > ring 0.15; of its 2 units one matches red's
    # template as well as its masks (D:3), not a majority: a part. Concept 2: no dissected unit
    assert concept_labels(concepts, [d, g]) == [
        {"concept": 1, "label": "red", "iou": 0.25, "units": 2, "placement": "part"},
        {"concept": 2, "label": None, "iou": None, "units": 0, "placement": None}]
    g.loc[0, "template_iou"] = 0.3  # now both: a position
    assert concept_labels(concepts, [d, g])[0]["placement"] == "position"


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


def test_cli_dissects_a_faces_model_on_the_generators_parts_and_draws_the_sheet(tmp_path,
                                                                                 capsys):
    random = ["--weights", "faces-dcgan=random", "--weights", "mtcnn-onet=random"]
    base = ["--labels", "faces", "--generator", "faces-dcgan", "--images", "6",
            "--batch-size", "3", "--min-prob", "0", *random]
    out = tmp_path / "rnet.csv"
    assert run(dissect.main, [*base, "--model", "mtcnn-rnet", "--weights", "mtcnn-rnet=random",
                              "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["label"]) == {"eye", "nose", "mouth", "skin", "hair", "background"}
    assert table[["iou", "template_iou"]].stack().between(0, 1).all()
    assert "found no face in 0 of 6 images" in capsys.readouterr().out
    sheet = tmp_path / "parts.png"
    assert run(dissect.main, [*base, "--sheet", str(sheet)]) == 0
    assert Image.open(sheet).size == (2 * 64 * 4, 6 * 64 * 4)  # image and parts, 6 rows
    capsys.readouterr()
    for args, message in (
            ([*base, "--min-prob", "1.01", "--model", "faces-dcgan", "--out", str(out)],
             "found no face with probability >= 1.01"),
            (["--labels", "faces", "--model", "mtcnn-rnet", "--out", str(out)],
             "give --generator"),
            (["--model", "shapes-gan", "--sheet", str(sheet)], "--sheet draws the part masks"),
            (["--model", "shapes-gan"], "give --out (with --model) or --sheet"),
            (["--labels", "faces", "--generator", "mtcnn-rnet", "--model", "mtcnn-rnet",
              "--weights", "mtcnn-rnet=random", "--weights", "mtcnn-onet=random",
              "--out", str(tmp_path / "x.csv")],
             "mtcnn-rnet is not a generator")):
        assert run(dissect.main, args) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]  # besides progress
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "x.csv").exists()
