"""The shipped shapes zoo: a manifest of trained weights (command, settings, seed, sha256,
machine, held-out metrics) and the check that a shipped file is the one the manifest names.

The demo mines the zoo that ships in `data/zoo/shapes/`, so every machine mines the same
models; float32 training follows the CPU's kernels, so a zoo retrained elsewhere differs. The
manifest is written from the train step's own metrics JSONs (`rosetta zoo manifest`), and a
shipped file is checked against it before the workflow uses it (`rosetta zoo check`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
from pathlib import Path

from ..core.cli import UserError
from ..core.stores import atomic_output

RETRAIN = "retrain the zoo with `make zoo` (docs/reference/models.md)"


def machine() -> dict[str, str | int]:
    """Where a zoo was trained: float32 training is exact only on the same CPU and libraries."""
    import numpy as np  # only the manifest needs them: `check` starts without torch
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "system": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__}


def manifest_entry(weights: Path, metrics: Path) -> dict:
    """One model's record: its file, size and hash, and the train step's report on it."""
    try:
        report = json.loads(metrics.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{metrics}: not a training report ({err}); retrain the model") from None
    missing = {"model", "settings", "metrics", "command"} - set(report)
    if missing:
        raise UserError(f"{metrics}: the training report lacks {', '.join(sorted(missing))}; "
                        "retrain the model with the current train step")
    data = weights.read_bytes()  # a few MB
    return {"file": weights.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "objective": report.get("objective"), "command": report["command"],
            "seed": report["settings"]["seed"], "settings": report["settings"],
            "metrics": report["metrics"]}


def write_manifest(trained: dict[str, tuple[Path, Path]], out: Path) -> dict:
    """The manifest of models {name: (weights, metrics JSON)}, written to `out`."""
    manifest = {
        "zoo": "shapes",
        "written": datetime.date.today().isoformat(),
        "machine": machine(),
        "models": {name: manifest_entry(w, m) for name, (w, m) in sorted(trained.items())},
    }
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(path: Path) -> dict:
    """The manifest at `path`, or one line saying why it cannot be read."""
    try:
        manifest = json.loads(path.read_text())
        manifest["models"].items()
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{path}: not a zoo manifest ({type(err).__name__}: {err}); restore it "
                        f"with `git checkout -- {path}`, or {RETRAIN}") from None
    return manifest


def check_shipped(model: str, weights: Path, manifest_path: Path) -> tuple[dict, bytes]:
    """The manifest's entry for `model` and the bytes of `weights` once they are the file it
    names; otherwise one line: which file, which hash was found and which was expected."""
    entry = read_manifest(manifest_path)["models"].get(model)
    if entry is None:
        raise UserError(f"{manifest_path} has no entry for {model}; {RETRAIN}")
    if not weights.is_file():
        raise UserError(f"{weights} not found; restore it with `git checkout -- {weights}`, "
                        f"or {RETRAIN}")
    data = weights.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != entry["sha256"]:
        raise UserError(f"{weights} is not the file {manifest_path} names (sha256 {found[:12]}, "
                        f"expected {entry['sha256'][:12]}); restore it with "
                        f"`git checkout -- {weights}`, or {RETRAIN}")
    return entry, data


def place_shipped(model: str, weights: Path, manifest_path: Path, out: Path,
                  metrics: Path) -> None:
    """Check `weights` against the manifest, then write the bytes checked to `out` and its
    entry to `metrics` (each written whole or not at all)."""
    entry, data = check_shipped(model, weights, manifest_path)
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
    with atomic_output(metrics) as tmp:
        tmp.write_text(json.dumps({"model": model, **entry}, indent=2) + "\n")
