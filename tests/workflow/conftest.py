"""The tiny project the workflow tests share, built once a session by `snakemake`."""

from __future__ import annotations

import pytest
from workflow_project import DISCS, make_project, snakemake, tiny_params


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A tiny project built once by `snakemake` (rule all: dictionary, pairwise pages, sheet).
    Session scope, so that no other file's test run in between can end it (`make test` sends
    a file's tests to one xdist worker)."""
    project = make_project(tmp_path_factory.mktemp("built"), tiny_params(DISCS))
    snakemake(project)
    return project
