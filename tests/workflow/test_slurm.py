"""The shipped Slurm profile (`workflow/profiles/slurm`) on a real one-node cluster
(tests/slurm_cluster.py): the tiny dictionary built through Slurm equals the local build byte for
byte, every job that asks for a GPU ran in the gpu partition and no other, a match job
cancelled with `scancel` half way is retried and leaves no partial store; and a CPU-only
cluster without accounting builds with `device: cpu` and `--slurm-status-command squeue`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest
from slurm_cluster import SlurmCluster, available
from workflow_project import BIN, env, files, make_project, snakemake, store_files, tiny_params

pytestmark = pytest.mark.slow

DISC = "shapes-cnn-sup"
TARGET = "results/rosetta/shapes.csv"  # the concepts, through best buddies of the pair
MATCH_LOG = "logs/match--shapes-gan--all--fused--000032-000064.log"
# a quick cluster: status checks every 2 s from the start, not after 40 s
QUICK = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks",
         "2", "--latency-wait", "5"]


@pytest.fixture
def cluster_dir(tmp_path):
    if reason := available():
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tmp_path / "cluster"


def _through_slurm(project, cluster, *args: str) -> subprocess.Popen:
    """`snakemake --workflow-profile workflow/profiles/slurm ARGS` on `cluster`, started."""
    return subprocess.Popen(
        [str(BIN / "snakemake"), "--workflow-profile", "workflow/profiles/slurm", *QUICK, *args],
        cwd=project, env=env(SLURM_CONF=cluster.env["SLURM_CONF"]), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def _finish(run: subprocess.Popen, timeout: float, ok: bool = True) -> str:
    """The output of a run once it ends (killed after `timeout` s); its exit status 0 if ok."""
    try:
        output, _ = run.communicate(timeout=timeout)
    finally:
        run.kill()
    assert (run.returncode == 0) == ok, output[-4000:]
    return output


def _accounted(cluster, last: str, timeout: float = 60) -> list[list[str]]:
    """sacct's rows (job, partition, state, comment, requested TRES) once the job whose
    comment is `last` is recorded as completed (slurmdbd records jobs a moment after)."""
    end = time.monotonic() + timeout
    while True:
        rows = cluster.sacct("JobID", "Partition", "State", "Comment", "ReqTRES")
        if any(row[3] == last and row[2] == "COMPLETED" for row in rows) or \
                time.monotonic() > end:
            return rows
        time.sleep(1)


def _results(project) -> dict:
    """The best buddies and concepts, and the pair's match stores, byte for byte."""
    out = {name: data for name, data in files(project / "results").items()
           if name.startswith(("bestbuddies", "rosetta"))}
    for store in sorted((project / "results" / "match").glob("*/*/*/matches.zarr")):
        out[str(store.relative_to(project))] = store_files(store)
    return out


def _cancel_when_running(cluster, project, log: str, timeout: float = 300) -> str:
    """scancel the Slurm job of the match whose step has started writing `log`; its id."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = cluster.client("squeue", "-h", "-o", "%i %k %T").stdout.split("\n")
        running = [j.split()[0] for j in jobs if "rule_match_fused" in j and "RUNNING" in j]
        if running and (project / log).is_file() and (project / log).stat().st_size:
            cluster.client("scancel", running[0], check=True)
            return running[0]
        time.sleep(0.2)
    raise AssertionError(f"no match job ran within {timeout:.0f} s")


def test_the_profile_builds_on_slurm_what_a_local_run_builds_gpu_jobs_in_the_gpu_partition(
        cluster_dir, tmp_path):
    params = {**tiny_params([DISC]), "device": "auto"}  # auto: GPU jobs that run on the CPU
    local = make_project(tmp_path / "local", params)
    t0 = time.monotonic()
    snakemake(local, TARGET)
    local_seconds = time.monotonic() - t0

    cluster = SlurmCluster(cluster_dir)
    try:
        cluster.start()
        project = make_project(tmp_path / "slurm", params)
        t0 = time.monotonic()
        run = _through_slurm(project, cluster, TARGET)
        try:
            cancelled = _cancel_when_running(cluster, project, MATCH_LOG)
        finally:
            _finish(run, timeout=600)
        slurm_seconds = time.monotonic() - t0
        rows = _accounted(cluster, last="rule_rosetta_wildcards_shapes")
    finally:
        cluster.stop()
    print(f"cluster up in {cluster.startup_seconds:.1f} s; {TARGET} locally in "
          f"{local_seconds:.0f} s, through Slurm in {slurm_seconds:.0f} s")
    print("\n".join("|".join(row) for row in rows))

    # the same bytes, and no temporary of the cancelled job left
    assert _results(project) == _results(local)
    assert not [p for p in (project / "results").rglob(".*tmp-*")]
    # every job that asked for a GPU ran in the gpu partition, and only those
    jobs = {job: (partition, state, re.match(r"rule_(\w+?)(?:_wildcards_|$)", comment)[1],
                  "gres/gpu" in tres)
            for job, partition, state, comment, tres in rows}
    for partition, _, rule, gpu in jobs.values():
        assert partition == ("gpu" if gpu else "cpu"), (rule, partition)
    rules = {rule: gpu for _, _, rule, gpu in jobs.values()}
    assert rules.pop("match_fused_shapes_gan_all") and not any(rules.values()), rules
    assert {"train", "reduce", "bestbuddies", "rosetta"} <= set(rules)
    # the cancelled match was retried: the same rule and shard ran again and completed
    assert jobs[cancelled][1].startswith("CANCELLED")
    comment = next(c for job, _, _, c, _ in rows if job == cancelled)
    assert any(c == comment and state == "COMPLETED" for _, _, state, c, _ in rows)


def test_a_cpu_only_cluster_without_accounting_builds_with_device_cpu(cluster_dir, tmp_path):
    cluster = SlurmCluster(cluster_dir, gpus=False, accounting=False)
    shard = "results/match/shapes-gan/all/shapes-cnn-sup/shards/000000-000032.zarr"
    try:
        cluster.start()
        project = make_project(tmp_path / "cpu", {**tiny_params([DISC]), "device": "cpu"})
        _finish(_through_slurm(project, cluster, shard), timeout=600)
        shown = cluster.client("scontrol", "show", "job", "-o", check=True).stdout
        # with a GPU device the match job asks for a GPU, which this cluster refuses
        gpu = make_project(tmp_path / "gpu", {**tiny_params([DISC]), "device": "auto"})
        shutil.copytree(project / "results" / "zoo", gpu / "results" / "zoo")  # trained
        refused = _finish(_through_slurm(gpu, cluster, shard), timeout=300, ok=False)
    finally:
        cluster.stop()
    assert (project / shard).is_dir()
    jobs = [line for line in shown.splitlines() if "JobState=COMPLETED" in line]
    assert {re.search(r"Comment=rule_(\w+?)_wildcards", j)[1] for j in jobs} == {
        "train", "match_fused_shapes_gan_all"}
    assert all("Partition=cpu" in job and "gres/gpu" not in job and "gres:gpu" not in job
               for job in jobs), shown
    assert "Invalid generic resource (gres) specification" in refused, refused[-3000:]
