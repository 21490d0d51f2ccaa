"""The shipped shapes zoo through the workflow: with zoo.source shipped (params.yaml's default)
the jobs mine data/zoo/shapes/ after its hash check and nothing trains; params.yaml settings
that the shipped zoo was not trained with, a missing model or a changed file stop with one line;
`make zoo`'s target trains every model and writes their manifest."""

import json
from collections import Counter

import yaml
from workflow_project import DISCS, ROOT, make_project, planned_jobs, snakemake, tiny_params


def shipped_params() -> dict:
    """The tiny project's settings with the zoo shipped, as params.yaml has it."""
    params = tiny_params(DISCS)
    params["zoo"] = yaml.safe_load((ROOT / "params.yaml").read_text())["zoo"]
    return params


def test_the_demo_mines_the_shipped_zoo_and_trains_nothing(tmp_path):
    project = make_project(tmp_path / "p", shipped_params())
    jobs = planned_jobs(project, "results/dictionary/shapes.html", "results/zoo/shapes/samples.png")
    rules = Counter(j["rule"] for j in jobs)
    assert "train" not in rules and rules["zoo"] == 1 + len(DISCS)
    for job in (j for j in jobs if j["rule"] == "zoo"):
        (out,) = [p for p in job["output"] if p.endswith(".safetensors")]
        shipped = out.replace("results/zoo/shapes/", "data/zoo/shapes/")
        assert {shipped, "data/zoo/shapes/manifest.json"} <= job["input"]
        assert f"--weights {shipped} " in job["cmd"]
    match = [j for j in jobs if j["rule"].startswith("match")]
    assert match and all("results/zoo/shapes/shapes-gan.safetensors" in j["input"] for j in match)

    snakemake(project, "results/zoo/shapes/shapes-cnn-sup.safetensors")
    assert ((project / "results/zoo/shapes/shapes-cnn-sup.safetensors").read_bytes()
            == (ROOT / "data/zoo/shapes/shapes-cnn-sup.safetensors").read_bytes())
    record = json.loads((project / "results/zoo/shapes/shapes-cnn-sup.json").read_text())
    assert record["metrics"]["held_out"]["shape_accuracy"] > 0.9


def test_a_shipped_zoo_that_does_not_fit_stops_with_one_line(tmp_path):
    params = shipped_params()
    params["zoo"]["models"]["shapes-cnn-sup"]["steps"] += 1
    project = make_project(tmp_path / "p", params)
    manifest = project / "data/zoo/shapes/manifest.json"
    shipped = json.loads(manifest.read_text())
    del shipped["models"]["shapes-cnn-ssl"]
    manifest.write_text(json.dumps(shipped))
    out = snakemake(project, "--dry-run", check=False)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.startswith("params.yaml")]
    steps = params["zoo"]["models"]["shapes-cnn-sup"]["steps"]
    assert lines == [
        f"params.yaml: zoo.models.shapes-cnn-sup: steps {steps} (shipped: {steps - 1}) differ "
        "from the shipped zoo's; set zoo.source: trained to train with them",
        "params.yaml: zoo.models.shapes-cnn-ssl is not in the shipped zoo "
        "(data/zoo/shapes/manifest.json); set zoo.source: trained to train it here",
    ]

    project = make_project(tmp_path / "q", shipped_params())
    weights = project / "data/zoo/shapes/shapes-gan.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    out = snakemake(project, "results/zoo/shapes/shapes-gan.safetensors", check=False)
    assert out.returncode != 0
    assert any(line.startswith("rosetta zoo: error: data/zoo/shapes/shapes-gan.safetensors "
                               "is not the file data/zoo/shapes/manifest.json names")
               for line in out.stderr.splitlines()), out.stderr
    assert not (project / "results/zoo/shapes/shapes-gan.safetensors").exists()


def test_make_zoo_s_target_trains_every_model_and_writes_their_manifest(tmp_path):
    """`make zoo` runs this target with zoo.source overridden, so it trains with params.yaml's
    settings (here a few steps each) whatever the shipped zoo was trained with."""
    params = tiny_params(DISCS)
    params["zoo"]["source"] = "shipped"
    project = make_project(tmp_path / "p", params)
    snakemake(project, "results/zoo/trained/manifest.json", "--config", "zoo={source: trained}")
    manifest = json.loads((project / "results/zoo/trained/manifest.json").read_text())
    assert sorted(manifest["models"]) == sorted(params["zoo"]["models"])
    for name, entry in manifest["models"].items():
        assert entry["settings"]["steps"] == 3
        assert entry["command"].startswith(f"python -m rosetta_steps.train {name} --out "
                                           f"results/zoo/trained/{name}.safetensors")
