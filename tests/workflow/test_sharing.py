"""The sharing guide (docs/guides/sharing.md) followed by two people: you record the tiny
project's results in DVC and publish them, a colleague clones the repository and pulls them.
The guide's marked blocks (`<!-- tested: LABEL -->` before a fence) are read from the Markdown
and run as they stand, so the guide and this test cannot drift apart; the only changes are
the remote's path and the repository's address, which become folders here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

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
    sh,
    snakemake,
    tiny_params,
)

pytestmark = pytest.mark.slow  # a DVC commit, push and pull of the whole tiny project

GUIDE = ROOT / "docs" / "guides" / "sharing.md"
BLOCK = re.compile(r"^<!-- tested: ([\w-]+) -->\n```bash\n(.*?)^```", re.S | re.M)
REMOTE = "/nfs/lab/rosetta-dvc"  # the guide's shared folder
URL = "https://github.com/my-lab/rosetta-neurons.git"  # the guide's repository
DVC_FILES = [".dvc/config", ".dvc/.gitignore", ".dvc/plots/grouped_bars.json"]
NOTHING = "Nothing to be done (all requested files are present and up to date)."
CHARTS = ["null--shapes", "stability-best-buddies--shapes", "stability-jaccard--shapes"]


def follow(cwd: Path, label: str, replace: tuple[str, str] | None = None) -> str:
    """Run the guide's bash block `label` in `cwd` and return its output; `replace` swaps
    one string of the block first."""
    found = BLOCK.findall(GUIDE.read_text())
    code = dict(found)[label]
    assert len(dict(found)) == len(found), "a label is used twice"
    if replace:
        assert replace[0] in code
        code = code.replace(*replace)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"{label} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def chart_rows(project: Path, *args: str) -> dict[str, list[dict]]:
    """The rows of each chart that `dvc plots ARGS --json` draws."""
    charts = json.loads(sh(project, "dvc", "plots", *args, "--json").stdout)["data"]
    return {name: chart[0]["content"]["data"]["values"] for name, chart in charts.items()}


@pytest.fixture
def yours(built, tmp_path) -> Path:
    """Your clone: the tiny project with Snakemake's results (`built`'s), the repository's
    .gitignore and .dvc/ files and its own dvc.yaml, committed and pushed to `origin.git`."""
    project = make_project(tmp_path / "yours", tiny_params(DISCS))
    shutil.copytree(built / "results", project / "results")
    for name in [".gitignore", *DVC_FILES]:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    (project / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))
    snakemake(project, "--touch")  # times as Snakemake left them (other tests commit `built`)
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "You")
    git(project, "config", "user.email", "you@example.org")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "The tiny project")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(project, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(project, "push", "-q", "-u", "origin", "main")
    return project


def test_a_colleague_gets_the_results_byte_for_byte_and_nothing_to_do(yours, tmp_path):
    remote = tmp_path / "remote"
    follow(yours, "remote", (REMOTE, str(remote)))
    assert NOTHING in follow(yours, "build")
    assert "not built or out of date: none" in follow(yours, "record")
    assert NOTHING in snakemake(yours, "--dry-run").stdout  # the touch undid DVC's rewrites
    follow(yours, "publish")
    assert any(remote.rglob("*"))

    colleague = tmp_path / "colleague"
    colleague.mkdir()
    follow(colleague, "clone", (URL, str(tmp_path / "origin.git")))
    clone = colleague / "rosetta"
    assert NOTHING in follow(clone, "pull")
    assert files(clone / "results") == files(yours / "results")
    assert job_counts(clone) == {}
    assert "up to date" in sh(clone, "dvc", "status").stdout

    follow(clone, "look")
    assert (clone / "dvc_plots" / "index.html").exists()
    shown, diffed = chart_rows(clone, "show"), chart_rows(clone, "diff", "HEAD")
    assert sorted(shown) == sorted(diffed) == CHARTS
    assert {row["rev"] for rows in shown.values() for row in rows} == {"workspace"}
    assert {row["rev"] for rows in diffed.values() for row in rows} == {"workspace", "HEAD"}
    for field in ("best_buddies", "jaccard"):  # per revision a line per D: its stability table
        lines = defaultdict(list)
        for row in diffed[f"stability-{field.replace('_', '-')}--shapes"]:
            lines[row["rev"], row["filename"]].append((row["images"], row[field]))
        assert sorted(lines) == [(rev, f"{d}.json") for rev in ("HEAD", "workspace")
                                 for d in sorted(DISCS)]
        for (_, name), points in lines.items():
            table = json.loads((clone / "results/stability/shapes-gan/all" / name).read_text())
            assert points == [(f["images"], f[field]) for f in table["fractions"]]
            assert [images for images, _ in points] == [32, 64]
    found = json.loads((clone / "results/metrics/discovery/shapes.json").read_text())
    bars = {(r["disc"], r["set"]): r["best_buddies"] for r in diffed["null--shapes"]
            if r["rev"] == "HEAD"}
    assert bars == {**{(d, "observed"): s["observed"] for d, s in found["best_buddies"].items()},
                    **{(d, "null"): s["null"]["mean"] for d, s in found["best_buddies"].items()}}


def downstream(jobs: list[dict], changed: set[str]) -> set[str]:
    """The stages that read any of the files `changed`, or what such a stage writes."""
    stale, names = set(changed), set()
    while new := [j for j in jobs if j["name"] not in names and stale.intersection(j["deps"])]:
        for job in new:
            names.add(job["name"])
            stale.update(job["outs"])
    return names


def test_after_a_partial_run_the_guide_records_what_is_built(yours):
    """An edit's sheet missing, and the concept table changed since all that was made from it
    (Snakemake would remake those): the guide's recipe records every other stage, and these
    not."""
    (yours / "results/edits/shapes/zoom.png").unlink()
    concepts = yours / "results/rosetta/shapes.csv"
    concepts.write_bytes(concepts.read_bytes() + b"\n")
    jobs = dvc_stages.snakemake_jobs(yours)
    left = downstream(jobs, {str(concepts.relative_to(yours))})
    assert {"edit--zoom", "dictionary--shapes", "invert"} <= left
    assert "rosetta--shapes" not in left and len(left) < len(jobs) / 2
    assert dvc_stages.built_stages(yours) == {j["name"]: j["name"] not in left for j in jobs}

    stages = (yours / "dvc.yaml").read_text()
    out = follow(yours, "record")  # DVC commits a dvc.yaml of the built stages, then it is back
    assert (yours / "dvc.yaml").read_text() == stages
    assert f"not built or out of date: {', '.join(sorted(left))}" in out
    recorded = yaml.safe_load((yours / "dvc.lock").read_text())["stages"]
    assert set(recorded) == {dvc_stages.CHECK_STAGE} | {j["name"] for j in jobs} - left
    bare = sh(yours, "dvc", "commit", "-f", check=False)  # what the guide warns of
    assert bare.returncode != 0 and "zoom.png' does not exist" in bare.stderr


def test_a_stage_whose_input_is_gone_is_left_out_of_the_record(yours):
    """A model's weights gone while all that was made from them is up to date: Snakemake
    plans nothing for it, but DVC refuses to record a stage whose input is missing, so the
    guide's recipe leaves out the stages that read the file (and the one that wrote it) and
    records the rest."""
    weights = "results/zoo/trained/shapes-cnn-ssl.safetensors"
    (yours / weights).unlink()
    jobs = dvc_stages.snakemake_jobs(yours)
    readers = {j["name"] for j in jobs if weights in j["deps"] or weights in j["outs"]}
    assert {"train--shapes-cnn-ssl", "dissect--shapes-cnn-ssl"} <= readers
    assert dvc_stages.built_stages(yours) == {j["name"]: j["name"] not in readers for j in jobs}
    out = follow(yours, "record")
    assert f"not built or out of date: {', '.join(sorted(readers))}" in out
    recorded = yaml.safe_load((yours / "dvc.lock").read_text())["stages"]
    assert set(recorded) == {dvc_stages.CHECK_STAGE} | {j["name"] for j in jobs} - readers

    (yours / ".dvc/config").write_text("[core\n")  # DVC cannot even start: its error is shown
    failed = sh(yours, "python", "workflow/scripts/dvc_stages.py", "--commit", check=False)
    assert failed.returncode != 0
    assert failed.stderr.startswith("ERROR: ") and len(failed.stderr.splitlines()) == 1
