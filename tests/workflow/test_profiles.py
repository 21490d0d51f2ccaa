"""The profiles on the tiny project with a GPU device: the GPU workstation's (one GPU job at a
time) and Slurm's (GPU jobs, fused match jobs among them, on the GPU partition). Dry runs only:
nothing runs, and the Slurm executor plans without Slurm installed."""

from __future__ import annotations

import re
from types import SimpleNamespace
from unittest.mock import Mock

import pytest
import yaml
from snakemake.cli import parse_args
from workflow_project import DISCS, ROOT, make_project, sh, tiny_params

FUSED = "match_fused_shapes_gan_all"  # the fused match rule of the tiny dictionary
PROFILES = ROOT / "workflow" / "profiles"
JOB = re.compile(r"\n(?=\[[^\n]*\]\n(?:local)?rule )")  # a job's block in a dry run
STEP = re.compile(r"python -m rosetta_steps\.(\w+)")
CPU_NODES = {"reduce", "stability"}  # use CUDA when their node has it; Slurm runs them on CPU


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The tiny project with `device: cuda`: its model jobs ask for a GPU (nothing runs)."""
    return make_project(tmp_path_factory.mktemp("profiles"), {**tiny_params(DISCS),
                                                              "device": "cuda"})


def on_cuda(command: str) -> bool:
    """Whether the step a job's command runs can run on CUDA (it resolves a device)."""
    step = STEP.search(command)
    source = ROOT / "rosetta_steps" / f"{step.group(1)}.py" if step else None
    return bool(source) and "resolve_device" in source.read_text()


def dry_run(project, *args: str) -> list[dict]:
    """rule, resources, threads and whether its step can run on CUDA, of every job that
    `snakemake --dry-run --printshellcmds ARGS` plans."""
    proc = sh(project, "snakemake", "--dry-run", "--printshellcmds", *args)
    jobs = []
    for block in JOB.split(proc.stdout + proc.stderr)[1:]:
        resources = re.search(r"^    resources: (.*)$", block, re.M)
        threads = re.search(r"^    threads: (\d+)$", block, re.M)
        jobs.append({
            "rule": re.search(r"^(?:local)?rule (\S+):", block, re.M).group(1),
            "resources": dict(item.split("=", 1) for item in resources.group(1).split(", ")),
            "threads": int(threads.group(1)) if threads else 1,
            "cuda": on_cuda(block),
        })
    assert sum(job["rule"] == FUSED for job in jobs) == 2, [job["rule"] for job in jobs]
    return jobs


def test_the_gpu_profile_allows_one_gpu_job_at_a_time(project, monkeypatch):
    monkeypatch.chdir(project)
    _, args = parse_args(["--workflow-profile", str(PROFILES / "gpu"), "--dry-run"])
    assert {name: r.value for name, r in args.resources.items()} == {"gpu": 1}
    assert args.rerun_incomplete and args.show_failed_logs


@pytest.mark.parametrize("args", [["--workflow-profile", str(PROFILES / "gpu")],
                                  ["--cores", "2", "--resources", "gpu=1"]])
def test_every_job_that_can_run_on_cuda_asks_for_the_gpu(project, args):
    jobs = dry_run(project, *args)
    assert {job["rule"] for job in jobs if job["cuda"]} >= {FUSED, *CPU_NODES, "dictionary"}
    assert any(not job["cuda"] for job in jobs)
    for job in jobs:
        assert job["resources"].get("gpu") == ("1" if job["cuda"] else None), job


class _Resources(dict):
    """A job's resources as the Slurm plugin reads them: `.get(name)` and `.name`."""

    __getattr__ = dict.get


def test_slurm_picks_the_gpu_partition_for_every_job_that_asks_for_a_gpu_and_only_those(
        project):
    """By what a job asks for, not by its rule: the profile names no rule's partition, and the
    Slurm plugin's own selection from partitions.yaml sends the GPU-asking jobs (the fused
    match jobs among them) to `gpu` and the rest to `cpu` (the real cluster: test_slurm)."""
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    profile = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert not any("slurm_partition" in r for r in profile["set-resources"].values())
    assert "slurm_partition" not in profile["default-resources"]
    partitions = read_partition_file(PROFILES / "slurm" / profile["slurm-partition-config"])
    jobs = dry_run(project, "--workflow-profile", str(PROFILES / "slurm"))
    for job in jobs:
        on_gpu = job["cuda"] and job["rule"] not in CPU_NODES
        assert job["resources"].get("gpu", "0") == ("1" if on_gpu else "0"), job
        resources = _Resources({k: int(v) if v.isdigit() else v
                                for k, v in job["resources"].items()})
        stand_in = SimpleNamespace(resources=resources, threads=job["threads"], name=job["rule"])
        assert get_best_partition(partitions, stand_in, Mock()) == ("gpu" if on_gpu else "cpu")
    assert {job["rule"] for job in jobs if job["resources"].get("gpu") == "1"} >= {FUSED}


def test_a_fused_rule_takes_match_s_overrides_under_its_own(project):
    jobs = dry_run(project, "--cores", "4", "--set-threads", "match=3", "--set-resources",
                   "match:slurm_partition=gpu", "match:runtime=11", f"{FUSED}:runtime=7")
    fused = [job for job in jobs if job["rule"] == FUSED]
    for job in fused:
        assert job["resources"]["slurm_partition"] == "gpu" and job["threads"] == 3, job
        assert job["resources"]["runtime"] == "7", job
    assert all("slurm_partition" not in job["resources"] for job in jobs if job not in fused)


@pytest.mark.parametrize("device, merged_on", [("cuda", "auto"), ("cpu", "cpu")])
def test_reduce_and_stability_merge_on_the_cpu_when_params_yaml_says_cpu(
        project, device, merged_on, tmp_path):
    """They run no model, so a GPU device merges where the node has one (Slurm sends them to
    CPU nodes), and `device: cpu` keeps them off a GPU the machine happens to have."""
    if device != "cuda":
        project = make_project(tmp_path / "cpu", {**tiny_params(DISCS), "device": device})
    out = sh(project, "snakemake", "--dry-run", "--printshellcmds", "--cores", "2").stdout
    for step in CPU_NODES:
        commands = re.findall(rf"python -m rosetta_steps\.{step} .*", out)
        assert commands and all(f"--device {merged_on} " in c for c in commands), commands
