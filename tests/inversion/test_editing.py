"""Edits through Rosetta maps (Sec. 4.2), what they are measured by, the distance form of
L_act, single-neuron visualisation and out-of-distribution targets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rosetta_steps import edit, models
from rosetta_steps.core import world
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.images import read_images, to_uint8
from rosetta_steps.core.labels import object_mask
from rosetta_steps.core.stores import open_match_store
from rosetta_steps.inversion import editing
from rosetta_steps.inversion.measures import area, centroid, concept_activation, count
from rosetta_steps.inversion.objective import (
    InversionSettings,
    Pair,
    activation_distance,
    activation_similarity,
)
from rosetta_steps.inversion.sheets import strongest_pairs
from rosetta_steps.mining.correlation import CorrelationAccumulator
from rosetta_steps.mining.reduction import write_match_store


def test_object_pixels_are_the_shapes_worlds_true_objects():
    batch = world.render(64, seed=5)
    truth = batch.masks.any(axis=1)
    found = object_mask(batch.images)
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.95
    # a muted background never counts, however its gradient runs
    assert not found[~truth].any()


def test_centroid_area_and_count_of_masks():
    mask = np.zeros((2, 8, 8), bool)
    mask[0, 1:3, 2:6] = True  # 2 x 4 block: centre (3.5, 1.5)
    mask[0, 6:8, 0:2] = True  # a second region of 4 pixels
    assert centroid(mask)[0].tolist() == pytest.approx([(8 * 3.5 + 4 * 0.5) / 12,
                                                        (8 * 1.5 + 4 * 6.5) / 12])
    assert np.isnan(centroid(mask)[1]).all()
    assert area(mask).tolist() == [12 / 64, 0.0]
    assert count(mask).tolist() == [2, 0]
    mask[1, 4, 4] = True  # one pixel is a speck, not an object
    assert count(mask).tolist() == [2, 0]


def test_concept_activation_is_the_positive_part_of_the_z_scores():
    maps = {"a": torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[0.0, 0.0], [0.0, 8.0]]]])}
    stats = {("a", 0): (3.0, 2.0), ("a", 1): (2.0, 0.0)}
    got = concept_activation(maps, {1: [("a", 0)], 2: [("a", 0), ("a", 1)]}, stats)
    z0 = np.clip((np.array([1, 3, 5, 7]) - 3) / 2, 0, None).mean()  # 0.75
    assert got[0].tolist() == pytest.approx([z0, z0 / 2])  # a dead unit counts 0


def test_distance_is_the_mean_squares_minus_twice_eq6():
    gen = torch.Generator().manual_seed(1)
    gan = {"g": torch.rand(3, 2, 4, 4, generator=gen, dtype=torch.float64) * 3}
    target = {"t": torch.randn(3, 2, 8, 8, generator=gen, dtype=torch.float64)}
    pairs = [Pair("g", 0, "t", 1, 1.2, 0.8, 0.1, 1.1), Pair("g", 1, "t", 0, 1.5, 0.9, 0.0, 1.0)]
    g_only = [Pair(p.gan_layer, p.gan_channel, p.gan_layer, p.gan_channel, p.gan_mean,
                   p.gan_std, p.gan_mean, p.gan_std) for p in pairs]
    t_only = [Pair(p.target_layer, p.target_channel, p.target_layer, p.target_channel,
                   p.target_mean, p.target_std, p.target_mean, p.target_std) for p in pairs]
    # both maps are resized to 8 x 8 first; G's mean square is taken there too
    g8 = {"g": torch.nn.functional.interpolate(gan["g"], size=(8, 8), mode="bilinear",
                                               align_corners=False)}
    expected = (activation_similarity(g8, g8, g_only) + activation_similarity(target, target,
                                                                              t_only)
                - 2 * activation_similarity(gan, target, pairs))
    assert torch.allclose(activation_distance(gan, target, pairs), expected)
    assert torch.allclose(activation_distance(gan, gan, g_only),
                          torch.zeros(3, dtype=torch.float64))


def test_an_edit_of_the_pixels_says_what_a_perfect_edit_gives():
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 28:36, 8:16] = True
    shifted = editing._edited_mask("shift", mask, editing.EditOptions(shift=0.25))
    assert (centroid(shifted) - centroid(mask)).tolist() == [[16.0, 0.0]]
    zoomed = editing._edited_mask("zoom", mask, editing.EditOptions(zoom=2.0))
    assert area(zoomed)[0] == 0  # an object off the centre leaves the frame
    mask[0, 28:36, 28:36] = True
    assert area(editing._edited_mask("zoom", mask, editing.EditOptions()))[0] == pytest.approx(
        4 * 64 / 64 ** 2)


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory):
    """shapes-gan at random weights, its G-vs-G store from 16 images, two concepts."""
    path = tmp_path_factory.mktemp("dictionary")
    spec, model = models.load("shapes-gan", "random")
    z = spec.latent.sample(0, range(16))
    with torch.no_grad():
        maps = spec.run(model, z)[1]
    acc = CorrelationAccumulator()
    acc.update(maps, maps)
    write_match_store(acc, path / "self.zarr", gan="shapes-gan", disc="shapes-gan")
    std = acc.native_stats("gan")[1]
    offsets = {name: i for i, name in enumerate(["stem.act", "up1.act", "up2.act"])}
    live = [c for c in range(8) if float(std[128 + c]) > 0]  # up1.act starts at unit 128
    assert len(live) >= 4 and offsets
    rows = [(1 if i < 2 else 2, "shapes-gan", "up1.act", c, "gan", 0.5)
            for i, c in enumerate(live[:4])]
    pd.DataFrame(rows, columns=["concept", "model", "layer", "channel", "role", "corr"]
                 ).to_csv(path / "concepts.csv", index=False)
    return path


@pytest.mark.parametrize("name", editing.EDITS)
def test_every_edit_runs_and_is_measured(dictionary, name):
    metrics, sheet = editing.edit_images("shapes-gan", "random", str(dictionary / "concepts.csv"),
                                      str(dictionary / "self.zarr"), name, 2, 0,
                                      InversionSettings(steps=4, lr=0.05), editing.EditOptions())
    assert metrics["edit"] == name and metrics["pairs"] == 4 and metrics["images"] == 2
    expected = {"shift": "moved_x_px", "zoom": "area_ratio", "copy_paste": "objects_after",
                "remove": "share_halved", "add": "share_grown"}[name]
    assert expected in metrics
    panels = {"copy_paste": 3, "remove": 4, "add": 4}.get(name, 2)
    assert sheet.width > panels * 128 and sheet.height > 2 * 128
    if name in ("remove", "add"):
        assert set(metrics["chosen_concepts"]) <= {1, 2}


def test_remove_and_add_change_only_the_chosen_concept():
    maps = {"a": torch.rand(2, 3, 4, 4) + 1}
    members = {1: [("a", 0)], 2: [("a", 1), ("a", 2)]}
    out = editing.edited_maps("remove", maps, members, [1, 2], editing.EditOptions())
    assert torch.equal(out["a"][0, 1:], maps["a"][0, 1:])  # image 0: concept 1 only
    assert (out["a"][0, 0] == maps["a"][0, 0].min()).all()
    assert torch.equal(out["a"][1, 0], maps["a"][1, 0])  # image 1: concept 2 only
    assert (out["a"][1, 2] == maps["a"][1, 2].min()).all()
    up = editing.edited_maps("add", maps, members, [2, 2], editing.EditOptions(scale=3.0))
    assert torch.allclose(up["a"][:, 1:], 3 * maps["a"][:, 1:])


def test_the_edit_command_writes_both_files_or_stops_with_one_line(dictionary, tmp_path,
                                                                   capsys):
    base = ["--gan", "shapes-gan", "--weights", "shapes-gan=random", "--concepts",
            str(dictionary / "concepts.csv"), "--matches", str(dictionary / "self.zarr"),
            "--images", "2", "--steps", "2", "--metrics", str(tmp_path / "m.json"),
            "--sheet", str(tmp_path / "s.png")]
    assert run(edit.main, base + ["--edit", "remove", "--concept", "7"]) == 2
    assert "no concept 7" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "s.png").exists()
    assert run(edit.main, base + ["--edit", "remove", "--concept", "2"]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["chosen_concepts"] == [2, 2]
    assert Image.open(tmp_path / "s.png").size[0] > 0
    missing = base + ["--edit", "shift"]
    missing[missing.index("--concepts") + 1] = str(tmp_path / "none.csv")
    assert run(edit.main, missing) == 2
    assert "run the rosetta step first" in capsys.readouterr().err


def test_self_pairs_refuse_units_the_store_does_not_have(dictionary):
    store = open_match_store(dictionary / "self.zarr")
    table = pd.read_csv(dictionary / "concepts.csv")
    pairs, members, stats = editing.self_pairs(table, store)
    assert [(p.gan_layer, p.gan_channel) for p in pairs] == [
        u for units in members.values() for u in units]
    assert all(p.gan_mean == p.target_mean and p.gan_std == stats[(p.gan_layer, p.gan_channel)][1]
               for p in pairs)
    table.loc[0, "channel"] = 999
    with pytest.raises(UserError, match="different runs"):
        editing.self_pairs(table, store)
    with pytest.raises(UserError, match="no units of shapes-gan"):
        editing.self_pairs(table.assign(model="other"), store)


def test_each_concept_is_shown_by_its_strongest_pair():
    table = pd.DataFrame({"concept": [1, 1, 2], "model": "G", "layer": "g",
                          "channel": [0, 1, 2], "role": "gan", "corr": 0.5})
    pairs = [Pair("g", 1, "D/d", 4, 0, 1, 0, 1), Pair("g", 2, "D/d", 5, 0, 1, 0, 1),
             Pair("g", 0, "D/d", 6, 0, 1, 0, 1), Pair("g", 9, "D/d", 7, 0, 1, 0, 1)]
    got = strongest_pairs(table, pairs, "G")
    assert {c: p.target_channel for c, p in got.items()} == {1: 4, 2: 5}


def test_ood_targets_are_read_resized_and_bad_files_refused(tmp_path):
    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "bad.png").write_text("not an image")
    x = read_images([tmp_path / "red.png"], 64)
    assert x.shape == (1, 3, 64, 64)
    assert torch.allclose(x[0, :, 10, 10], torch.tensor([1.0, -1.0, -1.0]))
    with pytest.raises(UserError, match="cannot read target image"):
        read_images([tmp_path / "bad.png"], 64)


def test_faces_are_measured_by_mtcnns_box_and_a_perfect_edit_moves_it():
    """On the faces zoo the subject is the face MTCNN's ONet finds: the DCGAN's faces are
    found, a pixel shift of a quarter width moves the box right by about 16 px, a 2x zoom
    grows it, and copy & paste leaves a face in both halves of most images."""
    if any(models.get(n).source.cached() is None for n in ("faces-dcgan", "mtcnn-onet")):
        pytest.skip("the faces zoo's files are not cached (make weights)")
    spec, g = models.load("faces-dcgan")
    with torch.no_grad():
        images = to_uint8(g(spec.latent.sample(0, range(16))))
    geometry, options = editing.FaceGeometry(), editing.EditOptions(shift=0.25, zoom=2.0)
    before = geometry(images)
    assert np.isfinite(before.area).all() and (before.count == 0).mean() > 0.8
    shifted = geometry(images, "shift", options)
    moved = shifted.centre[:, 0] - before.centre[:, 0]
    assert 10 < np.nanmedian(moved) < 20 and np.nanmedian(np.abs(
        shifted.centre[:, 1] - before.centre[:, 1])) < 4
    zoomed = geometry(images, "zoom", options)
    assert np.nanmedian(zoomed.area / before.area) > 1.5
    assert (geometry(images, "copy_paste", options).count == 2).mean() > 0.4
    shift = editing.measure("shift", images, images, images, None, None, None, options,
                            geometry)
    assert shift["moved_x_px"]["mean"] == 0 and shift["perfect_x_px"]["mean"] > 10
