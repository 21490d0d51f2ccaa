"""Benchmark: sharing results through an S3 remote (issue 39), in one run on one machine.

Copies a built project (default: this checkout's `results/` after `make demo`, with
`.snakemake/`; or `--tiny`: the tests' tiny project, built here first) to a temporary folder,
records it in DVC (`dvc_stages.py --commit`) and starts a SeaweedFS S3 server on loopback
(tests/remote_servers.py). Then, per dictionary: the bytes its stages push, the push time, and
the pull time of the same stages into a fresh clone, each named to DVC by its last stages with
`--with-deps` (`dvc_stages.last_stages`). Last, the colleague's path for one dictionary
(`--colleague`): pull only its mining (its inventory with `--with-deps`), change k, rebuild the
page and the discovery metric with Snakemake, against the same targets built from scratch in an
empty copy (the zoo and the mining included). Prints one line per measurement and the ratio. The
checkout's results are only read.

    python bench/bench_remotes.py [--tiny] [--dictionaries shapes faces shapes_real]
                                  [--colleague shapes] [--no-scratch] [--whole]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from remote_servers import S3Server  # noqa: E402
from workflow_project import (  # noqa: E402
    CODE,
    DISCS,
    dvc_stages,
    make_project,
    sh,
    snakemake,
    tiny_params,
)

DVC_FILES = [".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots/grouped_bars.json"]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def timed(fn, *args) -> float:
    """Seconds that fn(*args) takes."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def copy_project(source: Path, dest: Path) -> Path:
    """Code, params.yaml, results/ and Snakemake's records of `source`, in `dest`."""
    dest.mkdir(parents=True)
    for name in [*CODE, "params.yaml", ".snakemake", "results", "logs"]:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "conda", "incomplete"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def dictionary_stages(jobs: list[dict], name: str, recorded: set[str]) -> list[str]:
    """The recorded stages that dictionary `name`'s page, pairwise pages, discovery metric and
    inventory come from, those included."""
    seeds = [j for j in jobs if j["wildcards"].get("name") == name
             and j["rule"] in ("dictionary", "discovery", "inventory")]
    pairs = {d.replace("results/bestbuddies/", "results/pairwise/").replace(".csv", ".html")
             for j in seeds for d in j["deps"] if d.startswith("results/bestbuddies/")}
    seeds += [j for j in jobs if j["rule"] == "pairwise" and set(j["outs"]) & pairs]
    return sorted(dvc_stages.upstream(jobs, [j["name"] for j in seeds]) & recorded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="build and measure the tests' tiny project instead of results/")
    parser.add_argument("--dictionaries", nargs="+", default=None,
                        help="dictionaries to push and pull (default: every one recorded)")
    parser.add_argument("--colleague", default="shapes",
                        help="the dictionary the colleague rebuilds (default: shapes)")
    parser.add_argument("--no-scratch", action="store_true",
                        help="leave out the build from scratch (the ratio's denominator)")
    parser.add_argument("--whole", action="store_true",
                        help="also push every recorded stage at once and pull it into a clone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-remotes-") as tmp:
        tmp = Path(tmp)
        if args.tiny:
            source = make_project(tmp / "source", tiny_params(DISCS))
            print(f"tiny project built from scratch: {timed(snakemake, source):.1f} s")
        else:
            source = ROOT
            if not (ROOT / "results" / "match").exists():
                print("no results/ to share: run `make demo` first, or pass --tiny",
                      file=sys.stderr)
                return 1
        yours = copy_project(source, tmp / "yours")
        for name in DVC_FILES:
            (yours / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, yours / name)
        (yours / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(yours)))
        git(yours, "init", "-q", "-b", "main")
        server = S3Server(tmp / "s3", volumes=64).start()  # 4 GB: room for the demo's results
        try:
            return measure(args, yours, server, tmp)
        finally:
            server.stop()


def measure(args: argparse.Namespace, yours: Path, server: S3Server, tmp: Path) -> int:
    def record() -> None:
        sh(yours, "dvc", "repro", "-q", dvc_stages.CHECK_STAGE)
        sh(yours, "python", "workflow/scripts/dvc_stages.py", "--commit")
        snakemake(yours, "--touch")

    print(f"record (dvc_stages.py --commit, snakemake --touch): {timed(record):.1f} s")
    recorded = set(yaml.safe_load((yours / "dvc.lock").read_text())["stages"])
    jobs = dvc_stages.snakemake_jobs(yours)
    names = args.dictionaries or sorted({j["wildcards"]["name"] for j in jobs
                                         if j["rule"] == "dictionary" and j["name"] in recorded})
    for name in [*names, *(["all"] if args.whole else [])]:
        server.add_remote(yours, name, prefix=name, default=False)
    git(yours, "add", "-A")
    git(yours, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "results")

    print(f"{'dictionary':<14}{'stages':>7}{'named':>6}{'objects':>9}{'MB pushed':>11}"
          f"{'push s':>8}{'pull s':>8}")
    for name in names:
        stages = dictionary_stages(jobs, name, recorded)
        last = dvc_stages.last_stages(jobs, stages)
        push = timed(sh, yours, "dvc", "push", "-q", "-r", name, "--with-deps", *last)
        objects = server.objects(f"{name}/")
        clone = tmp / f"clone-{name}"
        git(tmp, "clone", "-q", str(yours), clone.name)
        server.credentials(clone, name)
        pull = timed(sh, clone, "dvc", "pull", "-q", "-r", name, "--with-deps", *last)
        size = sum(len(data) for data in objects.values()) / 1e6
        print(f"{name:<14}{len(stages):>7}{len(last):>6}{len(objects):>9}{size:>11.1f}"
              f"{push:>8.1f}{pull:>8.1f}")
    if args.whole:
        push_pull_whole(yours, server, tmp, recorded)

    name = args.colleague
    colleague = tmp / f"clone-{name}-mining"
    git(tmp, "clone", "-q", str(yours), colleague.name)
    server.credentials(colleague, name)
    stage = dvc_stages.inventory_stage(jobs, name)
    pull = timed(sh, colleague, "dvc", "pull", "-q", "-r", name, "--with-deps", stage)
    return rebuild(args, colleague, yours, tmp, pull, stage)


def push_pull_whole(yours: Path, server: S3Server, tmp: Path, recorded: set[str]) -> None:
    """Every recorded stage pushed at once and pulled into a clone."""
    push = timed(sh, yours, "dvc", "push", "-q", "-r", "all")
    objects = server.keys("all/")
    clone = tmp / "clone-all"
    git(tmp, "clone", "-q", str(yours), clone.name)
    server.credentials(clone, "all")
    pull = timed(sh, clone, "dvc", "pull", "-q", "--allow-missing", "-r", "all")
    size = sum(len(d) for d in server.objects("all/").values()) / 1e6
    print(f"all {len(recorded)} recorded stages: {len(objects)} objects, {size:.1f} MB; push "
          f"{push:.1f} s, pull into a clone {pull:.1f} s")


def rebuild(args: argparse.Namespace, colleague: Path, yours: Path, tmp: Path, pull: float,
            stage: str) -> int:
    """The colleague's rebuild of args.colleague at another k, against the same targets
    from scratch."""
    name = args.colleague
    snakemake(colleague, "--touch")
    params_path = colleague / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["k"] += 2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    targets = [f"results/dictionary/{name}.html", f"results/metrics/discovery/{name}.json"]
    seconds = timed(snakemake, colleague, *targets)
    print(f"colleague, {name}: pull of {stage} with its dependencies {pull:.1f} s, rebuild "
          f"with k={params['k']} {seconds:.1f} s")
    if not args.no_scratch:
        scratch = tmp / "scratch"
        copy_project(yours, scratch)
        shutil.rmtree(scratch / "results")
        shutil.rmtree(scratch / ".snakemake", ignore_errors=True)
        params_path.replace(scratch / "params.yaml")
        full = timed(snakemake, scratch, *targets)
        print(f"the same targets from scratch: {full:.1f} s; the colleague's rebuild takes "
              f"{seconds / full:.3f} of it ({full / seconds:.1f}x faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
