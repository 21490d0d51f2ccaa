"""The faces dictionary labelled by face parts through the workflow (`labels: faces`): every
model dissected on the generator's images against O-Net's part masks, each concept's label,
IoU and placement in the discovery metric and on the page, and the parts sheet. Needs the
faces zoo's real files (`make weights` caches them)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from PIL import Image
from workflow_project import DISCS, ROOT, make_project, snakemake, tiny_params

from rosetta_steps import models
from rosetta_steps.core.faceparts import PARTS
from rosetta_steps.mining.dissection import LANDMARKS, concept_labels, read_dissection

FACES = ["faces-dcgan", "mtcnn-onet", "mtcnn-rnet", "fer-minixception"]


def test_the_workflow_names_the_landmark_model_the_step_uses():
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r'^LANDMARKS = "([^"]+)"', common, re.M)[1] == LANDMARKS


@pytest.mark.slow
def test_the_faces_dictionary_is_labelled_by_face_parts(tmp_path):
    for name in FACES:
        if models.get(name).source.cached() is None:
            pytest.skip(f"{name}'s file is not cached (make weights)")
    params = tiny_params(DISCS)
    params["dictionaries"]["faces"].update(images=64)
    project = make_project(tmp_path / "p", params)
    targets = ["results/metrics/discovery/faces.json", "results/dictionary/faces.html",
               "results/dissection/faces-parts.png"]
    snakemake(project, *targets)
    tables = [read_dissection(project / f"results/dissection/faces/faces-dcgan/{m}.csv")
              for m in FACES]
    assert all(set(t["label"]) == set(PARTS) for t in tables)
    concepts = pd.read_csv(project / "results/rosetta/faces.csv", dtype={"layer": str})
    expected = concept_labels(concepts, tables)
    metric = json.loads((project / targets[0]).read_text())["concepts"]
    assert expected and [(c["label"], c["placement"]) for c in metric] == [
        (c["label"], c["placement"]) for c in expected]
    assert [c["iou"] for c in metric] == pytest.approx([c["iou"] for c in expected])
    assert {c["placement"] for c in metric} <= {"part", "position"}
    page = (project / targets[1]).read_text()
    for c in expected:
        assert f"{c['label']} (IoU {c['iou']:.3f}, <span title=" in page
    assert Image.open(project / targets[2]).size == (2 * 64 * 4, 6 * 64 * 4)
