"""Write dvc.yaml from the Snakemake DAG, so that DVC runs the very jobs Snakemake runs.

DVC's templating (foreach, matrix) can only loop over lists written out in params.yaml; it
cannot compute the shard list of a dictionary or the pairs of its models. So dvc.yaml is made
from Snakemake's own jobs of its target rule `share` (rule all's, and those of every dictionary
params.yaml marks `share: true`, so that they can be pushed and pulled too), read from the
output of `snakemake --dry-run --forceall --printshellcmds` (no Snakemake internals): one DVC
stage per job, with the same command, the same inputs as deps, the same outputs as outs, and
the params.yaml keys of its rule. Those stand beside each rule in workflow/rules/*.smk as a
`# dvc params: KEY ...` line; `{wildcard}` and `{config.path}` in a key are filled in per job,
and a key that params.yaml lacks (`models.<name>` of a model without options) is left out.

Settings that only reach a command (k, seed, the zoo's steps, ...) are written as DVC's own
`${key}` (the rules' `setting()`), so `dvc repro` runs what params.yaml says when it runs.
Settings that shape the stages (models, dictionaries, images, shard_size) cannot be: for them
every stage depends on a first stage, CHECK_STAGE, that reruns whenever params.yaml, the
Snakefile, workflow/ or the code change, writes this file again and refuses, in one line, to
go on when it differs from dvc.yaml. `make dvc.yaml` runs this; tests fail when the committed
one is stale.

Each dictionary's stability curves (best buddies and Jaccard against the images mined, per D,
read from the stability tables) and its observed against null best buddies (the discovery
step's plot file, drawn from zero by the template .dvc/plots/grouped_bars.json) are dvc.yaml's
`plots:`, for `dvc plots show` and `dvc plots diff`.

`--commit` records in dvc.lock what Snakemake has built, however much of the DAG a run made:
`dvc commit -f` for the stages whose outputs are all present and that Snakemake would not run
again (`dvc commit -f` alone stops at the first stage never built, after `make demo` say).

`--mining NAME` prints the last of the stages that mine dictionary NAME: its inventory
(rule `inventory`), which reads every store its mining made, so that `dvc pull --with-deps`
of it fetches the models' weights, twins, samples, shard and match stores and dissections,
what takes forward passes, and nothing else. DVC reads dvc.yaml and dvc.lock again for every
target it is named (seconds each at the demo's size) and once for all that `--with-deps` adds.

    python workflow/scripts/dvc_stages.py [--check [--stamp PATH] | --commit | --mining NAME]
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS = "results/metrics/"  # outputs declared as DVC metrics
CHECK_STAGE = "check-dvc-yaml"
CHECK_STAMP = "results/dvc-yaml-check.txt"
CHECK_DEPS = ["Snakefile", "data/ood", "params.yaml", "rosetta_steps", "workflow"]
HEADER = ("# Written by workflow/scripts/dvc_stages.py from the Snakemake DAG of rule share (the\n"
          "# default dictionaries and those marked `share: true`): edit params.yaml or the\n"
          "# rules, then run `make dvc.yaml`.\n")
TARGET = "share"  # the Snakefile's rule whose jobs are dvc.yaml's stages
STABILITY = "results/stability/"  # a pair's stability table: records under `fractions`
PLOTS = "results/plots/"  # plot files the steps write
LISTING = re.compile(r"^results/datasets/([^/]+)/")  # a folder data set's files in a shard
KEYS = re.compile(r"^# dvc params:(.*)\n(?:#.*\n)*rule (\w+):", re.M)


def dry_run_jobs(workdir: Path = ROOT, *args: str, templates: bool = False) -> list[dict]:
    """The jobs `snakemake --dry-run --printshellcmds ARGS` lists: rule, wildcards (in the
    rule's order), input, output and the shell command of each (None for target rules).
    With `templates`, commands hold `${key}` for the settings the rules template."""
    snakemake = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "ROSETTA_DVC_TEMPLATES": "1" if templates else "0"}
    proc = subprocess.run([str(snakemake), "--dry-run", "--printshellcmds", "--cores", "1",
                           *args], cwd=workdir, capture_output=True, text=True, env=env)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --dry-run failed ({proc.returncode}):\n{text[-3000:]}")
    jobs = []
    for block in re.split(r"\n(?=\[[^\n]*\]\n(?:local)?rule )", text)[1:]:
        rule = re.search(r"^(?:local)?rule (\S+):", block, re.M).group(1)
        fields = dict(re.findall(r"^    (input|output|wildcards): (.*)$", block, re.M))
        cmd = re.search(r"^Shell command: (.*)$", block, re.M)
        wildcards = dict(item.split("=", 1) for item in
                         filter(None, fields.get("wildcards", "").split(", ")))
        jobs.append({"rule": rule, "wildcards": wildcards,
                     "input": sorted(filter(None, fields.get("input", "").split(", "))),
                     "output": sorted(filter(None, fields.get("output", "").split(", "))),
                     "cmd": None if cmd is None or cmd.group(1) == "None"
                     else " ".join(cmd.group(1).split())})
    return jobs


def rule_keys(workdir: Path = ROOT) -> dict[str, list[str]]:
    """Each rule's `# dvc params:` key templates, from the rule files."""
    keys = {}
    for path in sorted((workdir / "workflow" / "rules").glob("*.smk")):
        for line, rule in KEYS.findall(path.read_text()):
            keys[rule] = line.split()
    return keys


MISSING = object()


def _lookup(params: dict, dotted: str):
    value = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def job_keys(templates: list[str], wildcards: dict, params: dict) -> list[str]:
    """The params.yaml keys of one job: templates filled in, keys params.yaml lacks left out."""
    keys = []
    for template in templates:
        key = re.sub(r"\{([\w.]+)\}", lambda m: str(wildcards[m.group(1)]) if m.group(1) in
                     wildcards else str(_lookup(params, m.group(1))), template)
        if key.split(".")[0] not in params:
            raise ValueError(f"dvc params key {template!r}: params.yaml has no {key!r}")
        if _lookup(params, key) is not MISSING:
            keys.append(key)
    return keys


def snakemake_jobs(workdir: Path = ROOT, targets: tuple[str, ...] = (TARGET,)) -> list[dict]:
    """Every job that building `targets` (default: rule share) takes, with outputs present or
    not.

    Each job: rule, name (a DVC stage name), cmd, deps, outs, params (params.yaml keys), and
    the folders of the data sets it reads.
    """
    templates = rule_keys(workdir)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    jobs = []
    for job in dry_run_jobs(workdir, "--forceall", *targets, templates=True):
        if job["cmd"] is None:  # the target rules `all` and `share`
            continue
        if job["rule"] not in templates:
            raise ValueError(f"rule {job['rule']} has no `# dvc params:` line in its rule file")
        # A folder data set's files reach the stages as the file lists the workflow writes
        # while it plans; the check stage depends on the folder, so that it plans again when
        # the files change and the lists of the shards they change are rewritten.
        folders = sorted({params["datasets"][m.group(1)]["folder"] for dep in job["input"]
                          if (m := LISTING.match(dep))})
        jobs.append({"rule": job["rule"], "wildcards": job["wildcards"],
                     "name": stage_name(job["rule"], job["wildcards"]),
                     "cmd": job["cmd"], "deps": job["input"], "outs": job["output"],
                     "params": job_keys(templates[job["rule"]], job["wildcards"], params),
                     "folders": folders})
    return sorted(jobs, key=lambda j: j["name"])


def built_stages(workdir: Path = ROOT) -> dict[str, bool]:
    """Each stage's name, and whether Snakemake has built it: its inputs and outputs all
    exist (DVC refuses to record a stage whose input is gone), and `snakemake share` would
    not run it again."""
    planned = {out for job in dry_run_jobs(workdir, TARGET) for out in job["output"]}
    return {job["name"]: all((workdir / path).exists() for path in [*job["deps"], *job["outs"]])
            and not planned.intersection(job["outs"]) for job in snakemake_jobs(workdir)}


def upstream(jobs: list[dict], names: list[str]) -> set[str]:
    """The stages `names` and every stage whose outputs they read, directly or not: what
    `dvc pull --with-deps` of `names` brings."""
    by_out = {out: job for job in jobs for out in job["outs"]}
    seen, todo = set(names), [job for job in jobs if job["name"] in set(names)]
    while todo:
        for dep in todo.pop()["deps"]:
            if (job := by_out.get(dep)) and job["name"] not in seen:
                seen.add(job["name"])
                todo.append(job)
    return seen


def inventory_stage(jobs: list[dict], name: str) -> str:
    """The stage of dictionary `name`'s inventory, which reads every store its mining made."""
    found = [j["name"] for j in jobs if j["rule"] == "inventory"
             and j["wildcards"]["name"] == name]
    if not found:
        raise ValueError(f"dvc.yaml has no dictionary {name!r}: mark it `share: true` in "
                         "params.yaml and run `make dvc.yaml`")
    return found[0]


def mining_stages(jobs: list[dict], name: str) -> list[str]:
    """The stages dictionary `name` is mined by: its inventory and every stage upstream of it
    (its models' weights, twins, samples, shard and match stores, and dissections), what a
    colleague pulls to rebuild it without a forward pass, whatever k, bb_rule, bb_fdr or
    examples they set."""
    return sorted(upstream(jobs, [inventory_stage(jobs, name)]))


def last_stages(jobs: list[dict], names: list[str]) -> list[str]:
    """The stages of `names` whose outputs no other stage of `names` reads: with their
    dependencies (`dvc pull --with-deps`), they are all of `names` when `names` holds every
    stage upstream of its own."""
    chosen = [job for job in jobs if job["name"] in set(names)]
    read = {dep for job in chosen for dep in job["deps"]}
    return [job["name"] for job in chosen if not read.intersection(job["outs"])]


def commit_built(workdir: Path = ROOT) -> int:
    """`dvc commit -f` the stages Snakemake has built (`built_stages`); DVC's exit status."""
    stages = built_stages(workdir)
    built = [name for name, done in stages.items() if done]
    if not built:
        print("no stage is built yet: run snakemake first", file=sys.stderr)
        return 1
    left = [name for name, done in stages.items() if not done]
    # Named, DVC commits stage by stage and writes dvc.lock after each (11 minutes for the
    # demo's 300 stages); committing every stage of a dvc.yaml at once is one pass. So when
    # some are not built, DVC commits a dvc.yaml of the built ones alone, and dvc.yaml is
    # restored after; dvc.lock keeps the entries of the stages it did not touch.
    path = workdir / "dvc.yaml"
    full = path.read_text()
    if left:
        spec = yaml.safe_load(full)
        spec["stages"] = {n: s for n, s in spec["stages"].items() if n in set(built)}
        spec.pop("plots", None)  # they name outputs of stages that may not be built
        path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
    dvc = Path(sys.executable).with_name("dvc")
    try:  # not --quiet, which silences DVC's errors too
        proc = subprocess.run([str(dvc), "commit", "--force"], cwd=workdir,
                              capture_output=True, text=True)
    finally:
        path.write_text(full)
    code = proc.returncode
    if code != 0:
        lines = (proc.stderr + proc.stdout).splitlines()
        print("\n".join([line for line in lines if line.startswith("ERROR")] or lines[-5:]),
              file=sys.stderr)
    else:
        print(f"dvc commit: {len(built)} stages recorded in dvc.lock; not built or out of "
              f"date: {', '.join(left) or 'none'}")
    return code


def plots(jobs: list[dict]) -> list[dict]:
    """dvc.yaml's plots of each dictionary that has a discovery job: its pairs' stability
    curves (with two shards or more) and its observed against null best buddies."""
    out = []
    for job in jobs:
        if job["rule"] != "discovery":
            continue
        name = job["wildcards"]["name"]
        tables = [dep for dep in job["deps"] if dep.startswith(STABILITY)]
        for field, label, title in (
                ("best_buddies", "best buddies", "best buddies against the images mined"),
                ("jaccard", "Jaccard with all images", "overlap with the best buddies of all "
                 "images")):
            if tables:
                out.append({f"stability-{field.replace('_', '-')}--{name}": {
                    "template": "linear", "x": "images", "y": {t: field for t in tables},
                    "title": f"{name}: {title}, per D", "x_label": "images", "y_label": label}})
        counts = next(o for o in job["outs"] if o.startswith(PLOTS))
        out.append({f"null--{name}": {
            "template": "grouped_bars", "x": "best_buddies", "y": {counts: "disc"},
            "title": f"{name}: best buddies observed and under the null (mean of the "
            "permutations), per D", "x_label": "best buddies", "y_label": "D"}})
    return out


def stage_name(rule: str, wildcards: dict) -> str:
    parts = [rule, *(re.sub(r"[^A-Za-z0-9_-]", "-", str(v)) for v in wildcards.values())]
    return "--".join(parts)


def dvc_yaml(jobs: list[dict]) -> str:
    folders = sorted({f for job in jobs for f in job.get("folders", [])})
    stages = {CHECK_STAGE: {
        "cmd": f"python workflow/scripts/dvc_stages.py --check --stamp {CHECK_STAMP}",
        "deps": [*CHECK_DEPS, *folders], "outs": [CHECK_STAMP]}}
    for job in jobs:
        stage = {"cmd": job["cmd"], "deps": [CHECK_STAMP, *job["deps"]]}
        if job["params"]:
            stage["params"] = job["params"]
        outs = [o for o in job["outs"] if not o.startswith(METRICS)]
        if outs:
            stage["outs"] = outs
        metrics = [o for o in job["outs"] if o.startswith(METRICS)]
        if metrics:  # `dvc metrics show` / `dvc metrics diff` read these
            stage["metrics"] = metrics
        stages[job["name"]] = stage
    charts = plots(jobs)
    return HEADER + yaml.safe_dump({"stages": stages, **({"plots": charts} if charts else {})},
                                   sort_keys=False, width=1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether dvc.yaml is up to date (exit 1 if not)")
    parser.add_argument("--stamp", type=Path,
                        help="with --check, as DVC's first stage: write this file when it is, "
                        "and report a stale one in one line")
    parser.add_argument("--commit", action="store_true",
                        help="record in dvc.lock the stages Snakemake has built (dvc commit -f)")
    parser.add_argument("--mining", metavar="DICTIONARY",
                        help="print the stage of DICTIONARY's inventory: with its dependencies "
                        "(`dvc pull --with-deps`), all that mining it made")
    args = parser.parse_args(argv)
    try:
        if args.commit:
            return commit_built()
        if args.mining:
            print(inventory_stage(snakemake_jobs(), args.mining))
            return 0
        text = dvc_yaml(snakemake_jobs())
    except (RuntimeError, ValueError) as err:
        lines = str(err).splitlines()  # a params.yaml error is Snakemake's own one line
        print("\n".join([line for line in lines if line.startswith("params.yaml")] or lines),
              file=sys.stderr)
        return 1
    path = ROOT / "dvc.yaml"
    old = path.read_text() if path.exists() else ""
    if args.check:
        if old != text:
            if not args.stamp:
                diff = difflib.unified_diff(old.splitlines(), text.splitlines(), "dvc.yaml",
                                            "from the Snakemake DAG", lineterm="", n=1)
                print("\n".join(list(diff)[:40]), file=sys.stderr)
            print("dvc.yaml is stale: params.yaml, the rules or the code changed the stages; "
                  "run `make dvc.yaml`, then `dvc repro` again", file=sys.stderr)
            return 1
        if args.stamp:
            args.stamp.parent.mkdir(parents=True, exist_ok=True)
            args.stamp.write_text("dvc.yaml agrees with params.yaml, the Snakefile, workflow/ "
                                  "and the code\n")
        return 0
    path.write_text(text)
    print(f"dvc.yaml: {len(text.splitlines())} lines, "
          f"{text.count(chr(10) + '  ') - text.count(chr(10) + '    ')} stages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
