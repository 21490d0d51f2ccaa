"""Names in params.yaml stay in their namespace (issue 41, items 2 and 3): a name that is a
path segment of its own (`.`, `..`) and a user's model that takes a packaged model's name are
refused by the config check, before any job, in one line, with nothing written."""

from __future__ import annotations

import re

import pytest
import yaml
from workflow_project import DISCS, ROOT, make_project, snakemake, tiny_params

ENCODER = '''import torch


def build(weights):
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
'''


def refusal(project) -> list[str]:
    """The dry run's params.yaml lines; it must fail and write nothing under results/."""
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0, out.stdout
    assert not (project / "results").exists() or not any((project / "results").rglob("*"))
    return [line for line in out.stderr.splitlines() if line.startswith("params.yaml")]


@pytest.mark.parametrize("name", [".", ".."])
def test_a_data_set_or_dictionary_named_dot_or_dot_dot_is_refused(tmp_path, name):
    params = tiny_params(DISCS)
    params["datasets"][name] = {"world": "shapes"}
    params["dictionaries"]["real"] = {"dataset": name, "anchor": DISCS[0],
                                      "discs": DISCS[1:], "images": 64}
    lines = refusal(make_project(tmp_path / "a", params))
    assert lines and all(f"'{name}' does not match" in line for line in lines), lines
    assert any(line.startswith("params.yaml: datasets:") for line in lines), lines

    params = tiny_params(DISCS)
    params["dictionaries"][name] = params["dictionaries"].pop("shapes")
    params["inversion"]["dictionary"] = params["edits"]["dictionary"] = name
    lines = refusal(make_project(tmp_path / "b", params))
    assert any(line.startswith("params.yaml: dictionaries:") and f"'{name}'" in line
               for line in lines), lines


def test_names_with_dots_inside_still_pass():
    schema = yaml.safe_load((ROOT / "workflow/schemas/params.schema.yaml").read_text())
    pattern = schema["$defs"]["name"]["pattern"]
    assert all(re.search(pattern, n) for n in ["timm:convnext_tiny.fb_in1k", "...", "a..b"])
    assert not any(re.search(pattern, n) for n in [".", "..", "a/b", ""])


@pytest.mark.parametrize("name", ["shapes-cnn-ssl", "timm:resnet18"])
def test_a_users_model_with_a_packaged_name_is_refused_before_any_job(tmp_path, name):
    params = tiny_params(DISCS)
    params["models"][name] = {"file": "my_encoder.py", "builder": "build",
                              "kind": "discriminative", "layers": ["1"],
                              "input": {"size": 32}}
    project = make_project(tmp_path / "p", params)
    (project / "my_encoder.py").write_text(ENCODER)
    lines = refusal(project)
    assert lines == [f"params.yaml: models.{name}: {name} is a packaged model's name; give "
                     "your own model a name of its own"], lines
