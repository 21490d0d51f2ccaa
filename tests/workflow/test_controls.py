"""The controls through the workflow (issue 36): turning them on for a built dictionary
mines the twins and the pixel control alone (D's stores are kept), the twin jobs come
first, and the controls tables, the decoy concepts and the discovery metric's verdicts are
made; dictionaries on one generator must agree on their controls."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from workflow_project import (
    DISCS,
    job_counts,
    make_project,
    planned_jobs,
    snakemake,
    tiny_params,
    write_params,
)

from rosetta_steps.mining.controls import CONTROL_COLUMNS

pytestmark = pytest.mark.slow
DISCOVERY = "results/metrics/discovery/shapes.json"
FUSED = "match_fused_shapes_gan_all"


def test_controls_mine_only_the_twins_and_pixels_and_give_each_concept_a_verdict(tmp_path):
    project = make_project(tmp_path / "p", tiny_params(DISCS))
    snakemake(project, DISCOVERY)
    params = tiny_params(DISCS)
    params["dictionaries"]["shapes"]["controls"] = {"twins": 2, "pixels": True}
    write_params(project, params)
    jobs = planned_jobs(project, DISCOVERY)
    counts = job_counts(project, DISCOVERY)
    twins = [f"twin{s}:{d}" for d in DISCS for s in (1, 2)]
    # the pixel control needs its match store alone, not best buddies
    assert counts == {"twin": 4, f"{FUSED}_1": 2, "reduce": 5, "bestbuddies": 4,
                      "controls": 2, "rosetta_decoys": 2, "discovery": 1}
    mined = {o.split("/")[4] for j in jobs if j["rule"].startswith(FUSED) for o in j["output"]}
    assert mined == {*twins, "pixels"}  # D's and G's shard stores are kept
    snakemake(project, DISCOVERY)
    for d in DISCS:
        pairs = pd.read_csv(project / f"results/controls/shapes-gan/all/{d}.csv")
        best = pd.read_csv(project / f"results/bestbuddies/shapes-gan/all/{d}.csv")
        assert len(pairs) == len(best) and set(CONTROL_COLUMNS) <= set(pairs.columns)
        assert pairs["q_learned"].between(0, 1).all() and pairs["delta"].notna().all()
        assert pairs["pixel_channel"].notna().all()
    summary = json.loads((project / DISCOVERY).read_text())
    for d in DISCS:
        controls = summary["best_buddies"][d]["controls"]
        assert len(controls["twins"]["best_buddies"]["per_twin"]) == 2
        assert controls["delta_floor"] > 0
    verdicts = [c["verdict"] for c in summary["concepts"]]
    assert verdicts and set(verdicts) <= {"learned", "pixels", "architecture"}
    assert sum(summary["verdicts"].values()) == len(verdicts)
    decoys = summary["decoy_concepts"]
    assert decoys["observed"] == len(verdicts) and len(decoys["decoys"]["per_twin"]) == 2
    assert job_counts(project, DISCOVERY) == {}  # and a second run does nothing

    params["dictionaries"]["again"] = {**params["dictionaries"]["shapes"],
                                       "controls": {"twins": 3}}
    params["dictionaries"]["again"].pop("default", None)
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and "with different controls" in out.stderr
    params["dictionaries"]["again"]["controls"] = {"twins": 1}
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and "params.yaml: dictionaries.again.controls.twins" in out.stderr
