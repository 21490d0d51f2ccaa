"""Write dvc.yaml from the Snakemake DAG, so that DVC runs the very jobs Snakemake runs.

DVC's templating (foreach, matrix) can only loop over lists written out in params.yaml; it
cannot compute the shard list of a dictionary or the pairs of its models. So dvc.yaml is made
from Snakemake's own jobs for the dictionaries params.yaml marks as default: one DVC stage per
job, with the same command, the same inputs as deps, the same outputs as outs and the
params.yaml keys the job depends on. `make dvc.yaml` runs this after params.yaml changes;
tests/test_workflow.py fails when the committed dvc.yaml is stale.

    python workflow/scripts/dvc_stages.py [--check]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS = "results/metrics/"  # outputs declared as DVC metrics
HEADER = ("# Written by workflow/scripts/dvc_stages.py from the Snakemake DAG of the default\n"
          "# dictionaries: edit params.yaml or the rules, then run `make dvc.yaml`.\n")


def snakemake_jobs(workdir: Path = ROOT, targets: tuple[str, ...] = ()) -> list[dict]:
    """Every job that building `targets` (default: rule all) takes, with outputs present or not.

    Each job: rule, name (a DVC stage name), cmd, deps, outs, params (params.yaml keys).
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    snakefile=workdir / "Snakefile", workdir=workdir)
        dag_api = workflow_api.dag(DAGSettings(targets=frozenset(targets), forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        keys = workflow.globals["param_keys"]
        jobs = []
        for job in workflow.dag.jobs:
            if job.rule.norun:  # the `all` target rule
                continue
            wildcards = dict(job.wildcards_dict)
            jobs.append({
                "rule": job.rule.name,
                "name": stage_name(job.rule.name, wildcards),
                "cmd": " ".join(job.shellcmd.split()),
                "deps": sorted(str(f) for f in job.input),
                "outs": sorted(str(f) for f in job.output),
                "params": keys(job.rule.name, wildcards),
            })
    return sorted(jobs, key=lambda j: j["name"])


def stage_name(rule: str, wildcards: dict) -> str:
    parts = [rule, *(re.sub(r"[^A-Za-z0-9_-]", "-", str(v)) for v in wildcards.values())]
    return "--".join(parts)


def dvc_yaml(jobs: list[dict]) -> str:
    stages = {}
    for job in jobs:
        stage = {"cmd": job["cmd"], "deps": job["deps"]}
        if job["params"]:
            stage["params"] = job["params"]
        outs = [o for o in job["outs"] if not o.startswith(METRICS)]
        if outs:
            stage["outs"] = outs
        metrics = [o for o in job["outs"] if o.startswith(METRICS)]
        if metrics:  # `dvc metrics show` / `dvc metrics diff` read these
            stage["metrics"] = metrics
        stages[job["name"]] = stage
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether dvc.yaml is up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    text = dvc_yaml(snakemake_jobs())
    path = ROOT / "dvc.yaml"
    old = path.read_text() if path.exists() else ""
    if args.check:
        if old != text:
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), "dvc.yaml",
                                        "from the Snakemake DAG", lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
            print("dvc.yaml is stale: run `make dvc.yaml`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"dvc.yaml: {len(text.splitlines())} lines, "
          f"{text.count(chr(10) + '  ') - text.count(chr(10) + '    ')} stages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
