"""A throw-away copy of the project with tiny settings, and ways to drive it from tests."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CODE = ("Snakefile", "workflow", "rosetta_steps", "data", ".dvcignore")
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info")
DISCS = ["shapes-cnn-sup", "shapes-cnn-ssl"]  # the tiny dictionary's discriminative models


def _dvc_stages_module():
    spec = importlib.util.spec_from_file_location(
        "dvc_stages", ROOT / "workflow" / "scripts" / "dvc_stages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dvc_stages = _dvc_stages_module()


def tiny_params(discs: list[str], images: int = 64) -> dict:
    """params.yaml with the zoo trained here at a few steps, a 64-image dictionary without the
    controls, 2-image, 3-step inversions and edits, and a 32-image dissection; dvc.yaml
    holds shapes alone."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(batch_size=16, shard_size=32, k=3, examples=2, device="cpu")
    params["zoo"]["source"] = "trained"  # the shipped zoo: tests/workflow/test_zoo.py
    for settings in params["zoo"]["models"].values():
        settings.update(steps=3, batch_size=8, pool=64, eval_images=32)
    params["dictionaries"]["shapes"].update(discs=list(discs), images=images)
    # the controls' twins and pixels triple the jobs; tests/workflow/test_controls.py has them
    params["dictionaries"]["shapes"]["controls"] = {"twins": 0, "pixels": False}
    for name in ("faces", "shapes_real"):  # built by none of the tests that use dvc.yaml
        params["dictionaries"][name]["share"] = False
    params["inversion"].update(images=2, steps=3)
    params["edits"].update(images=2, steps=3)
    params["dissect"].update(images=32)
    return params


def make_project(path: Path, params: dict) -> Path:
    """Copy the code of the workflow to `path` and write `params` as its params.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=IGNORE)
        else:
            shutil.copy2(src, path / name)
    (path / "logs").mkdir()
    write_params(path, params)
    return path


def write_params(path: Path, params: dict) -> None:
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def env(**extra: str) -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def sh(path: Path, *args: str, check: bool = True, extra_env: dict | None = None
       ) -> subprocess.CompletedProcess:
    """Run a command of the environment (snakemake, dvc, python) in the project."""
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=path, env=env(**(extra_env or {})),
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def snakemake(path: Path, *args: str, check: bool = True, extra_env: dict | None = None
              ) -> subprocess.CompletedProcess:
    return sh(path, "snakemake", "--cores", "2", *args, check=check, extra_env=extra_env)


def planned_jobs(path: Path, *args: str) -> list[dict]:
    """The jobs a dry run would run: rule, inputs, outputs and shell command of each (the
    parser dvc.yaml is written with)."""
    return [{**job, "input": set(job["input"]), "output": set(job["output"])}
            for job in dvc_stages.dry_run_jobs(path, *args)]


def job_counts(path: Path, *args: str) -> Counter:
    return Counter(j["rule"] for j in planned_jobs(path, *args) if j["rule"] != "all")


def files(path: Path) -> dict[str, bytes]:
    """Every file under `path` by relative name (Snakemake's marker files left out)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".snakemake_timestamp"}


def store_files(path: Path) -> dict:
    """`files` of a store, its root metadata read as JSON without the attr that records what
    its match job wrote together (a fused job's store and a per-pair job's differ only there)."""
    out = files(path)
    root = json.loads(out.pop("zarr.json"))
    root["attributes"].pop("mined_with", None)
    return {**out, "zarr.json": root}
