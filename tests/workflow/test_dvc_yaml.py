"""dvc.yaml, written from the Snakemake DAG (workflow/scripts/dvc_stages.py): the committed one
is current, DVC parses every stage as the Snakemake job it comes from, and the one stage
that `--mining` names (a dictionary's inventory) brings, with its dependencies, the stages that
mine the dictionary."""

from __future__ import annotations

from workflow_project import DISCS, ROOT, dvc_stages, make_project, planned_jobs, sh, tiny_params

# the rules of forward passes and the stores they write
MINED = {"train", "zoo", "twin", "sample", "match", "reduce", "dissect", "dissect_faces"}


def test_committed_dvc_yaml_is_current():
    jobs = dvc_stages.snakemake_jobs(ROOT)
    assert (ROOT / "dvc.yaml").read_text() == dvc_stages.dvc_yaml(jobs), \
        "dvc.yaml is stale: run `make dvc.yaml`"


def test_the_last_stages_are_those_no_other_reads_and_upstream_all_they_read():
    jobs = [{"name": n, "deps": deps, "outs": [f"{n}.out"]} for n, deps in
            [("a", []), ("b", ["a.out"]), ("c", ["b.out", "x"]), ("d", ["a.out"])]]
    assert dvc_stages.upstream(jobs, ["c"]) == {"a", "b", "c"}
    assert dvc_stages.upstream(jobs, ["d", "b"]) == {"a", "b", "d"}
    assert dvc_stages.last_stages(jobs, ["a", "b", "c", "d"]) == ["c", "d"]
    assert dvc_stages.last_stages(jobs, ["a", "b"]) == ["b"]
    assert dvc_stages.last_stages(jobs, ["a"]) == ["a"]


def test_a_dictionary_s_mining_is_its_inventory_and_all_upstream_of_it():
    """`dvc_stages.py --mining NAME` gives `dvc pull --with-deps` one name, NAME's inventory
    (DVC reads its files again for each name): the stages it brings are forward passes and
    the stores they write, and every such stage that NAME's pages and metric come from."""
    jobs = dvc_stages.snakemake_jobs(ROOT)
    for name in ("faces", "shapes", "shapes_real"):
        mining = dvc_stages.mining_stages(jobs, name)
        assert dvc_stages.last_stages(jobs, mining) == [f"inventory--{name}"]
        assert {s.split("--")[0] for s in mining} <= {*MINED, "inventory"}
        made = [j["name"] for j in jobs if j["rule"] in ("dictionary", "discovery")
                and j["wildcards"]["name"] == name]
        needed = {s for s in dvc_stages.upstream(jobs, made) if s.split("--")[0] in MINED}
        assert needed and needed <= set(mining), needed - set(mining)


def test_dvc_stages_agree_with_snakemake_jobs(tmp_path):
    """Parsed by DVC itself, every stage is a Snakemake job: same command, deps and outs.
    DVC's stages are per pair whatever `match` says (fused jobs are Snakemake's scheduling,
    with the same outputs), so they are Snakemake's jobs under `match: per_pair`."""
    project = make_project(tmp_path / "p", {**tiny_params(DISCS), "match": "per_pair"})
    (project / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))
    sh(project, "dvc", "init", "--no-scm", "-q")
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        stages = {(" ".join(s.cmd.split()),
                   frozenset(d.def_path for d in s.deps if not hasattr(d, "params")
                             and d.def_path != dvc_stages.CHECK_STAMP),
                   frozenset(o.def_path for o in s.outs)) for s in repo.index.stages
                  if s.name != dvc_stages.CHECK_STAGE}
        params = {p for s in repo.index.stages for d in s.deps if hasattr(d, "params")
                  for p in d.params}
    jobs = {(j["cmd"], frozenset(j["input"]), frozenset(j["output"]))
            for j in planned_jobs(project, "--forceall") if j["rule"] != "all"}
    assert stages == jobs
    assert {"k", "bb_rule", "seed", "batch_size", "device"} <= params
