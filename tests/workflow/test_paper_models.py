"""The paper's generators through the same workflow as the shapes zoo, at random weights and
a few images: BigGAN-deep and StyleGAN-XL, from sampling to the pair's page. They run the real
architectures on CPU (a minute or more each), so they are marked slow."""

from __future__ import annotations

import pandas as pd
import pytest
from workflow_project import DISCS, job_counts, make_project, snakemake, tiny_params

from rosetta_steps.core.stores import open_store

pytestmark = pytest.mark.slow


def test_the_paper_zoo_runs_through_the_same_steps(tmp_path):
    """BigGAN-deep-128 (class briard) against ResNet-50 at random weights, 8 images, from
    sampling to the pair's page. (G against itself, 19264 x 19264 units, takes minutes and
    11 GB on CPU, so it is left to the GPU.)"""
    params = {**tiny_params(DISCS), "match": "per_pair"}  # a fused job would add G x G
    params["models"].update({"biggan-deep-128": {"weights": "random", "truncation": 0.4},
                             "resnet50": {"weights": "random"}})
    params["dictionaries"]["paper"] = {"gan": "biggan-deep-128", "class": "briard",
                                       "discs": ["resnet50"], "images": 8}
    project = make_project(tmp_path / "p", params)
    page = "results/pairwise/biggan-deep-128/briard/resnet50.html"
    assert job_counts(project, page) == {"sample": 1, "match": 1, "reduce": 1,
                                         "bestbuddies": 1, "pairwise": 1}
    snakemake(project, page)

    samples = open_store(project / "results/samples/biggan-deep-128/briard/000000-000008.zarr",
                         "samples")  # briard is ImageNet class 226
    assert samples.pixels.shape == (8, 128, 128, 3) and set(samples.class_index.values) == {226}
    pair = open_store(project / "results/match/biggan-deep-128/briard/resnet50/matches.zarr",
                      "matches")
    assert pair.corr.shape == (19264, 3840) and pair.attrs["n_images"] == 8
    buddies = pd.read_csv(project / "results/bestbuddies/biggan-deep-128/briard/resnet50.csv")
    assert len(buddies) > 0 and set(buddies.disc) == {"resnet50"}
    assert "biggan-deep-128" in (project / page).read_text()


def test_styleganxl_runs_through_the_same_steps(tmp_path):
    """StyleGAN-XL at random weights against ResNet-50, 2 images of class briard, from
    sampling to the pair's page: the shipped briard_xl dictionary, scaled down to the
    published 16 px ImageNet model, the stem the 256 px one grows from, through the same
    code (2.7 s an image on two CPU threads, against 50 s for the 256 px generator)."""
    gan = "styleganxl-imagenet16"
    params = {**tiny_params(DISCS), "threads": 2, "match": "per_pair"}
    params["models"].update({gan: {"weights": "random", "truncation": 0.5},
                             "resnet50": {"weights": "random"}})
    params["dictionaries"]["briard_xl"].update(gan=gan, discs=["resnet50"], images=2)
    project = make_project(tmp_path / "p", params)
    page = f"results/pairwise/{gan}/briard/resnet50.html"
    assert job_counts(project, page) == {"sample": 1, "match": 1, "reduce": 1,
                                         "bestbuddies": 1, "pairwise": 1}
    snakemake(project, page)

    samples = open_store(project / f"results/samples/{gan}/briard/000000-000002.zarr",
                         "samples")
    assert samples.pixels.shape == (2, 16, 16, 3) and set(samples.class_index.values) == {226}
    pair = open_store(project / f"results/match/{gan}/briard/resnet50/matches.zarr", "matches")
    assert pair.corr.shape == (11270, 3840) and pair.attrs["n_images"] == 2
    buddies = pd.read_csv(project / f"results/bestbuddies/{gan}/briard/resnet50.csv")
    assert len(buddies) > 0 and set(buddies.disc) == {"resnet50"}
    assert gan in (project / page).read_text()
