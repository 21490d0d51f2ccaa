"""Users' own models through the workflow: a generator and an encoder declared in params.yaml
(a file and a builder each) are mined like the zoo's, their files are code inputs, and a
declaration naming a missing file stops the run with one line."""

from __future__ import annotations

import pandas as pd
from workflow_project import (
    DISCS,
    job_counts,
    make_project,
    planned_jobs,
    snakemake,
    tiny_params,
    write_params,
)

GENERATOR = '''import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 1, 0), nn.ReLU(),
                                  nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(),
                                  nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.main(z)


def build(weights):
    torch.manual_seed(1)
    return Generator().eval()
'''
ENCODER = '''from torch import nn


def build(weights):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.GELU()).eval()
'''
ROSETTA = "results/rosetta/mine.csv"
PAIR = "results/match/my-dcgan/all/my-enc/matches.zarr"


def user_params() -> dict:
    params = tiny_params(DISCS)
    params["models"]["my-dcgan"] = {
        "file": "models/my_dcgan.py", "builder": "build", "kind": "generator",
        "weights": None, "layers": ["main.1", "main.3"], "latent": {"shape": [16, 1, 1]}}
    params["models"]["my-enc"] = {
        "file": "models/my_enc.py", "builder": "build", "kind": "discriminative",
        "weights": None, "layers": None, "input": {"size": 16, "mean": [0.5, 0.5, 0.5],
                                                   "std": [0.25, 0.25, 0.25]}}
    params["dictionaries"]["mine"] = {"gan": "my-dcgan", "discs": ["my-enc"], "images": 32}
    return params


def test_users_own_models_are_mined_and_their_files_rerun_them(tmp_path):
    project = make_project(tmp_path / "p", user_params())
    (project / "models").mkdir()
    (project / "models/my_dcgan.py").write_text(GENERATOR)
    (project / "models/my_enc.py").write_text(ENCODER)
    snakemake(project, ROSETTA)
    units = pd.read_csv(project / ROSETTA)
    assert set(units.model) == {"my-dcgan", "my-enc"}
    assert set(units[units.model == "my-enc"].layer) <= {"1", "3"}  # the encoder's activations
    assert set(units[units.model == "my-dcgan"].layer) <= {"main.1", "main.3"}
    assert job_counts(project, ROSETTA) == {}  # a second run does nothing

    (project / "models/my_enc.py").write_text(ENCODER + "# edited\n")
    rerun = planned_jobs(project, ROSETTA)
    assert any(PAIR in job["output"] for job in rerun)
    assert all("shapes" not in o for job in rerun for o in job["output"])

    params = user_params()
    params["models"]["my-enc"]["file"] = "models/none.py"
    write_params(project, params)
    out = snakemake(project, "--dry-run", ROSETTA, check=False)
    lines = [line for line in out.stderr.splitlines() if line.startswith("params.yaml")]
    assert out.returncode != 0
    assert lines == ["params.yaml: models.my-enc.file: models/none.py not found"]
