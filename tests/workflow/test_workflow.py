"""The workflow end to end on the tiny zoo: what Snakemake runs, what it reruns, results
recorded in DVC and shared through a DVC remote, and jobs run through a cluster executor."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections import Counter
from contextlib import contextmanager

import jsonschema
import pytest
import yaml
from workflow_project import (
    DISCS,
    ROOT,
    dvc_stages,
    env,
    files,
    job_counts,
    make_project,
    planned_jobs,
    sh,
    snakemake,
    store_files,
    tiny_params,
    write_params,
)

SHARDS = ["000000-000032", "000032-000064"]
SHARD = f"results/match/shapes-gan/all/shapes-cnn-sup/shards/{SHARDS[1]}.zarr"
PAIR = "results/match/shapes-gan/all/shapes-cnn-sup/matches.zarr"
INVERSIONS = {"edit": 5, "neurons": 1, "ood": 1}  # every job that reads the concept table
FUSED = "match_fused_shapes_gan_all"  # a shard's pairs and samples from one pass of G


def test_run_builds_everything_and_a_second_run_does_nothing(built):
    for target in ("results/dictionary/shapes.html", "results/zoo/shapes/samples.png",
                   "results/pairwise/shapes-gan/all/shapes-cnn-ssl.html", PAIR,
                   "results/match/shapes-gan/all/shapes-gan/matches.zarr"):
        assert (built / target).exists(), target
    assert sorted(p.name for p in (built / "results/samples/shapes-gan/all").iterdir()) == [
        "000000-000032.zarr", "000032-000064.zarr"]
    table = json.loads((built / "results/metrics/inversion.json").read_text())
    assert list(table["methods"]) == ["reconstruction only", "+ Rosetta (shapes-cnn-sup)",
                                      "+ Rosetta (shapes-cnn-ssl)", "+ Rosetta (all)"]
    assert all(m["pairs"] > 0 for name, m in table["methods"].items() if "Rosetta" in name)
    for sheet in ("table1", "neurons", "ood"):
        assert (built / f"results/inversion/shapes/{sheet}.png").exists(), sheet
    found = json.loads((built / "results/metrics/discovery/shapes.json").read_text())
    assert list(found["best_buddies"]) == DISCS and found["permutations"] == 2
    assert all(len(d["stability"]["fractions"]) == 2 for d in found["best_buddies"].values())
    assert all(c["label"] is not None for c in found["concepts"])
    for name in ("shift", "zoom", "copy_paste", "remove", "add"):
        assert (built / f"results/edits/shapes/{name}.png").exists(), name
        measured = json.loads((built / f"results/metrics/edits/shapes/{name}.json").read_text())
        assert measured["edit"] == name and measured["images"] == 2
    mined = json.loads((built / "results/metrics/inventory/shapes.json").read_text())
    assert mined["images"] == mined["samples"]["images"] == 64
    assert set(mined["pairs"]) >= {*DISCS, "shapes-gan"}
    assert set(mined["dissections"]) == {*DISCS, "shapes-gan"}
    for disc, pair in mined["pairs"].items():  # its match and null stores' files, on disk
        folder = built / "results/match/shapes-gan/all" / disc
        stores = [folder / "matches.zarr", *folder.glob("null-*.zarr")]
        assert pair["null_permutations"] == len(stores) - 1 == 2
        assert pair["bytes"] == sum(f.stat().st_size for store in stores for f in store.rglob("*")
                                    if f.is_file() and f.name != ".snakemake_timestamp")
    assert job_counts(built) == {}
    logs = sorted(p.name for p in (built / "logs").glob("match--*"))
    assert logs == [f"match--shapes-gan--all--fused--{s}.log" for s in SHARDS]


def made(job: dict) -> set[str]:
    """The partners whose shard stores a match job writes, and "samples" for a sample store."""
    return {"samples" if "/samples/" in o else o.split("/")[-3] for o in job["output"]}


def test_fused_jobs_mine_what_is_missing_and_per_pair_what_exists(tmp_path):
    """A fresh project mines each shard's pairs and samples in one job (one pass of G);
    `match: per_pair` plans a job per pair and one per sample shard; with some of a shard's
    stores present, only the missing ones are planned, fused while two or more are."""
    project = make_project(tmp_path / "p", tiny_params(DISCS))
    pair_jobs = Counter({"sample": 2, "match": 6})
    assert job_counts(project, PAIR) == {"train": 3, FUSED: 2, "reduce": 1}
    fused = [j for j in planned_jobs(project, PAIR) if j["rule"] == FUSED]
    assert made(fused[0]) == {*DISCS, "shapes-gan", "samples"}
    write_params(project, {**tiny_params(DISCS), "match": "per_pair"})
    assert job_counts(project) & pair_jobs == pair_jobs and FUSED not in job_counts(project)
    write_params(project, tiny_params(DISCS))
    done = project / SHARD.replace("shapes-cnn-sup", "shapes-gan")
    done.mkdir(parents=True)  # the self-match of the second shard exists
    jobs = planned_jobs(project, PAIR)
    second = [j for j in jobs if any(SHARDS[1] in o for o in j["output"])]
    assert len(second) == 1 and second[0]["rule"].startswith(FUSED)
    assert made(second[0]) == {*DISCS, "samples"}


def test_the_same_command_writes_the_same_bytes(built, tmp_path):
    """A per-pair job's command, run again, writes what the fused job wrote (but the record
    of what it wrote together)."""
    write_params(built, {**tiny_params(DISCS), "match": "per_pair"})
    try:
        jobs = planned_jobs(built, "--forceall", SHARD)
    finally:
        write_params(built, tiny_params(DISCS))
    job = next(j for j in jobs if j["rule"] == "match")
    cmd = job["cmd"].replace(SHARD, str(tmp_path / "again.zarr"))
    cmd = cmd.replace("> logs/", f"> {tmp_path}/")
    subprocess.run(cmd, shell=True, cwd=built, env=env(), check=True)
    assert store_files(tmp_path / "again.zarr") == store_files(built / SHARD)


@pytest.mark.parametrize("change, expected", [
    ("k", {"bestbuddies": 2, "stability": 2, "rosetta": 1, "discovery": 1, "dictionary": 1,
           "pairwise": 2, "invert": 1, **INVERSIONS}),
    ("bb_fdr", {"rosetta": 1, "discovery": 1, "dictionary": 1, "invert": 1, **INVERSIONS}),
    ("disc", {"train": 1, "dissect": 1, "match": 2, "reduce": 1, "bestbuddies": 1,
              "stability": 1, "rosetta": 1, "discovery": 1, "dictionary": 1, "pairwise": 1,
              "inventory": 1, "invert": 1, **INVERSIONS}),
    ("images", {FUSED: 1, "reduce": 3, "bestbuddies": 2, "stability": 2,
                "rosetta": 1, "discovery": 1, "dictionary": 1, "pairwise": 2, "inventory": 1,
                "invert": 1, **INVERSIONS}),
])
def test_a_change_reruns_exactly_what_it_affects(built, change, expected):
    params = tiny_params(DISCS)
    if change in ("k", "bb_fdr"):
        params[change] = {"k": 2, "bb_fdr": 0.05}[change]
    elif change == "disc":
        params["dictionaries"]["shapes"]["discs"].append("shapes-vit-mae")
    else:
        params["dictionaries"]["shapes"]["images"] = 96
    write_params(built, params)
    try:
        jobs = planned_jobs(built)
    finally:
        write_params(built, tiny_params(DISCS))
    assert Counter(j["rule"] for j in jobs if j["rule"] != "all") == expected
    if change == "images":  # the old shards are reused, only the new one is computed
        outputs = {o for j in jobs for o in j["output"] if "/shards/" in o or "/samples/" in o}
        assert outputs and all("000064-000096" in o for o in outputs)


@contextmanager
def changed(project, module: str):
    """Module `module` of the project's package with one line appended, then restored to its
    bytes and times (Snakemake compares checksums, so touching alone would rerun nothing)."""
    path = project / f"rosetta_steps/{module}.py"
    source, before = path.read_bytes(), path.stat()
    path.write_bytes(source + b"# changed\n")
    try:
        yield
    finally:
        path.write_bytes(source)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("module", ["models/paper", "models/styleganxl", "models/registry",
                                    "core/cli"])
def test_a_code_change_reruns_exactly_the_jobs_that_run_it(built, module):
    """The shapes zoo's jobs never import the paper's zoo (registered on first need), so its
    code is not their input; a module they all run reruns them all."""
    with changed(built, module):
        jobs = job_counts(built)
    everything = module in ("models/registry", "core/cli")
    assert jobs == (job_counts(built, "--forceall") if everything else Counter())


@pytest.mark.parametrize("module", ["mining/correlation", "mining/resize", "mining/buffers"])
def test_a_change_to_the_mining_kernel_neither_retrains_nor_resamples(built, module):
    """The kernel is an input of the jobs that accumulate correlations, and of nothing that
    trains or samples: the match jobs and what follows rerun, train and sample do not (the
    fused match jobs write the sample stores again, from the pass of G they make anyway)."""
    with changed(built, module):
        jobs = job_counts(built)
    assert "train" not in jobs and "sample" not in jobs and "samplesheet" not in jobs
    assert jobs[FUSED] == job_counts(built, "--forceall")[FUSED] > 0  # they wrote the samples


def test_dvc_commit_push_pull_and_repro(built, tmp_path):
    remote = tmp_path / "remote"
    (built / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(built)))
    if not (built / ".dvc").exists():
        sh(built, "dvc", "init", "--no-scm", "-q")
    sh(built, "dvc", "remote", "add", "-f", "-d", "shared", str(remote))
    sh(built, "dvc", "repro", "-q", dvc_stages.CHECK_STAGE)  # dvc.yaml fits params.yaml
    sh(built, "dvc", "commit", "-f", "-q")  # record Snakemake's results, no recompute
    assert "up to date" in sh(built, "dvc", "status").stdout
    sh(built, "dvc", "push", "-q")

    clone = make_project(tmp_path / "clone", tiny_params(DISCS))
    for name in ("dvc.yaml", "dvc.lock"):
        shutil.copy2(built / name, clone / name)
    sh(clone, "dvc", "init", "--no-scm", "-q")
    sh(clone, "dvc", "remote", "add", "-d", "shared", str(remote))
    sh(clone, "dvc", "pull", "-q")
    assert files(clone / "results") == files(built / "results")
    assert "up to date" in sh(clone, "dvc", "status").stdout
    snakemake(clone, "--touch")  # the documented step: mark pulled files as Snakemake's own
    assert job_counts(clone) == {}

    fresh = make_project(tmp_path / "fresh", tiny_params(DISCS))
    shutil.copy2(built / "dvc.yaml", fresh / "dvc.yaml")
    shutil.copytree(built / "results/zoo", fresh / "results/zoo")  # the stage's inputs
    sh(fresh, "dvc", "init", "--no-scm", "-q")
    stage = "match--shapes-gan--all--shapes-cnn-sup--000032-000064"
    sh(fresh, "dvc", "repro", "-q", dvc_stages.CHECK_STAGE)
    sh(fresh, "dvc", "repro", "-q", "--single-item", stage)
    assert store_files(fresh / SHARD) == store_files(built / SHARD)


def test_jobs_run_through_a_cluster_executor(built, tmp_path):
    """Each job goes through a submit script, as on a cluster: only files connect them."""
    project = make_project(tmp_path / "p", tiny_params(DISCS))
    shutil.copytree(built / "results/zoo", project / "results/zoo")
    submit = tmp_path / "submit.sh"
    submit.write_text('#!/bin/bash\nnohup env -i PATH="$PATH" HOME="$HOME" bash "$1" '
                      '> "$1.out" 2>&1 &\necho "local-$!"\n')
    submit.chmod(0o755)
    out = snakemake(project, "--executor", "cluster-generic",
                    "--cluster-generic-submit-cmd", str(submit), "--jobs", "2",
                    "--latency-wait", "30", PAIR)
    assert "3 of 3 steps (100%) done" in out.stdout + out.stderr
    assert files(project / PAIR) == files(built / PAIR)


def test_a_generator_s_own_batch_size_reaches_its_jobs_alone(tmp_path):
    """models.<G>.batch_size (a generator too large for the global batch at mem_mb) sets the
    batch of G's sample and match jobs, not the others'; the null model's check uses it."""
    params = tiny_params(DISCS)
    params["models"]["shapes-gan"] = {"batch_size": 4}
    project = make_project(tmp_path / "p", params)
    write_params(project, {**params, "match": "per_pair"})
    jobs = [j for j in planned_jobs(project) if j["cmd"]]
    mining = Counter(j["rule"] for j in jobs if "--batch-size 4 " in j["cmd"])
    assert mining == {"sample": 2, "match": 2 * (len(DISCS) + 1)}  # 2 shards of each pair
    assert any("--batch-size 16 " in j["cmd"] for j in jobs if j["rule"] == "dissect")
    params["models"]["shapes-gan"] = {"batch_size": 3}  # 32-image shards: a batch of 2 last
    write_params(project, params)
    assert snakemake(project, "--dry-run", check=False).returncode == 0
    params["models"]["shapes-gan"] = {"batch_size": 31}  # a batch of 1 last
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and "in batches of 31 leaves a batch of 1" in out.stderr


def test_bad_settings_stop_with_one_line(built, tmp_path):
    project = make_project(tmp_path / "p", {**tiny_params(DISCS), "shard_size": 0})
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.startswith("params.yaml")]
    assert lines == ["params.yaml: shard_size: 0 is less than the minimum of 1"]

    params = tiny_params(DISCS)
    params["dictionaries"]["other"] = {**params["dictionaries"]["shapes"], "images": 32}
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and "with different image counts" in out.stderr

    params = tiny_params(DISCS)
    params["inversion"]["ood"] = "data/no-such-folder"
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and \
        "inversion.ood: no *.png targets in 'data/no-such-folder'" in out.stderr

    params = tiny_params(DISCS)
    params["edits"]["dictionary"] = "nope"
    write_params(project, params)
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0 and "edits.dictionary: no dictionary 'nope'" in out.stderr

    out = snakemake(built, "results/dictionary/nope.html", check=False)
    assert out.returncode != 0 and "no dictionary 'nope'" in out.stderr + out.stdout

    # A step's one-line error reaches the terminal (not only its log), and nothing is left.
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
               "TORCH_HOME": str(tmp_path / "torch")}
    for target, message in [
        ("results/match/shapes-gan/all/shapes-cnn-nope/shards/000000-000032.zarr",
         "rosetta match: error: unknown model 'shapes-cnn-nope'; known models:"),
        ("results/samples/shapes-gan/briard/000000-000032.zarr",
         "rosetta sample: error: shapes-gan is unconditional: its only subset is 'all'"),
        ("results/match/shapes-gan/all/resnet50/shards/000000-000032.zarr",
         "rosetta match: error: resnet50: pretrained weights not cached"),
    ]:
        out = snakemake(built, target, check=False, extra_env=offline)
        assert out.returncode != 0
        assert any(line.startswith(message) for line in out.stderr.splitlines()), out.stderr
        assert not (built / target).exists()


def test_schema_accepts_the_shipped_params_and_the_tiny_ones():
    schema = yaml.safe_load((ROOT / "workflow/schemas/params.schema.yaml").read_text())
    for params in (yaml.safe_load((ROOT / "params.yaml").read_text()), tiny_params(DISCS)):
        jsonschema.Draft202012Validator(schema).validate(params)
    with pytest.raises(jsonschema.ValidationError, match="'sometimes' is not one of"):
        jsonschema.validate({**tiny_params(DISCS), "bb_rule": "sometimes"}, schema)


def test_conda_env_has_the_steps_dependencies_of_pyproject():
    tomllib = pytest.importorskip("tomllib")
    env = yaml.safe_load((ROOT / "workflow/envs/rosetta.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pip == [d for d in deps if not d.startswith(("snakemake", "dvc"))]


def test_paths_with_spaces_reach_the_steps_whole(tmp_path):
    """A weights path from params.yaml, and the log and output paths, are quoted in the
    commands: the shell hands each to the step as one argument."""
    params = tiny_params(DISCS)
    params["models"]["resnet50"] = {"weights": "my weights/r50 v1.pt"}
    project = make_project(tmp_path / "p", params)
    (project / "my weights").mkdir()
    (project / "my weights/r50 v1.pt").write_bytes(b"")
    target = "results/match/shapes-gan/all/resnet50/shards/000000-000032.zarr"
    job = next(j for j in planned_jobs(project, target) if j["rule"] == "match")
    args = shlex.split(job["cmd"])
    assert args[args.index("--weights", args.index("--weights") + 1) + 1] == \
        "resnet50=my weights/r50 v1.pt"
