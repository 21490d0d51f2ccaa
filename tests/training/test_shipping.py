"""The shipped shapes zoo: the manifest records what trained each file, a shipped file is used
only when its sha256 is the manifest's, and the files in data/zoo/shapes/ are the manifest's,
trained with params.yaml's settings, with held-out figures that recompute from them."""

import hashlib
import json
import shlex

import pytest
import yaml
from workflow_project import ROOT

from rosetta_steps import models
from rosetta_steps.core.cli import run
from rosetta_steps.mining.buddies import best_buddy_table
from rosetta_steps.mining.matching import Pair, mine_shard
from rosetta_steps.mining.reduction import reduce_pair
from rosetta_steps.train import main as train_main
from rosetta_steps.training import data
from rosetta_steps.training.evaluate import PROBE_TRAIN, batched, label_metrics, probe_report
from rosetta_steps.training.recipes import initial
from rosetta_steps.zoo import main as zoo_main

SHIPPED = ROOT / "data" / "zoo" / "shapes"
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny supervised model trained through the command and its manifest."""
    out = tmp_path_factory.mktemp("zoo")
    weights = out / "shapes-cnn-sup.safetensors"
    assert run(train_main, ["shapes-cnn-sup", "--out", str(weights), "--tiny"]) == 0
    assert run(zoo_main, ["manifest", f"shapes-cnn-sup={weights}",
                          "--out", str(out / "manifest.json")]) == 0
    return out


def check(folder, out, model="shapes-cnn-sup"):
    return run(zoo_main, ["check", model, "--weights", str(folder / f"{model}.safetensors"),
                          "--manifest", str(folder / "manifest.json"),
                          "--out", str(out / "w.safetensors"), "--metrics", str(out / "m.json")])


def test_the_manifest_records_what_trained_each_file(shipped):
    manifest = json.loads((shipped / "manifest.json").read_text())
    weights = shipped / "shapes-cnn-sup.safetensors"
    entry = manifest["models"]["shapes-cnn-sup"]
    report = json.loads(weights.with_suffix(".json").read_text())
    assert entry["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry["bytes"] == weights.stat().st_size and entry["file"] == weights.name
    assert entry["command"] == report["command"]
    assert shlex.split(entry["command"])[3:] == ["shapes-cnn-sup", "--out", str(weights),
                                                 "--tiny"]
    assert entry["settings"] == report["settings"] and entry["seed"] == 0
    assert entry["metrics"] == report["metrics"]
    assert set(manifest["machine"]) >= {"cpu", "cores", "system", "torch", "numpy"}


def test_a_checked_file_is_copied_with_its_record(shipped, tmp_path):
    assert check(shipped, tmp_path) == 0
    assert ((tmp_path / "w.safetensors").read_bytes()
            == (shipped / "shapes-cnn-sup.safetensors").read_bytes())
    record = json.loads((tmp_path / "m.json").read_text())
    entry = json.loads((shipped / "manifest.json").read_text())["models"]["shapes-cnn-sup"]
    assert record == {"model": "shapes-cnn-sup", **entry}


def test_a_changed_file_is_refused_in_one_line(shipped, tmp_path, capsys):
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "manifest.json").write_bytes((shipped / "manifest.json").read_bytes())
    blob = bytearray((shipped / "shapes-cnn-sup.safetensors").read_bytes())
    blob[-1] ^= 1
    (folder / "shapes-cnn-sup.safetensors").write_bytes(bytes(blob))
    capsys.readouterr()
    assert check(folder, tmp_path) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    expected = json.loads((shipped / "manifest.json").read_text())["models"]["shapes-cnn-sup"]
    found = hashlib.sha256(bytes(blob)).hexdigest()
    assert f"sha256 {found[:12]}, expected {expected['sha256'][:12]}" in line
    assert "git checkout" in line and "retrain the zoo with `make zoo`" in line
    assert not (tmp_path / "w.safetensors").exists() and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("problem, message", [
    ("no entry", "has no entry for shapes-cnn-sup"),
    ("not json", "not a zoo manifest"),
    ("no file", "shapes-cnn-sup.safetensors not found"),
])
def test_a_broken_shipment_is_one_line(problem, message, shipped, tmp_path, capsys):
    folder = tmp_path / "shipped"
    folder.mkdir()
    manifest = json.loads((shipped / "manifest.json").read_text())
    if problem == "no entry":
        manifest["models"] = {}
    text = json.dumps(manifest)
    (folder / "manifest.json").write_text(text[:-5] if problem == "not json" else text)
    if problem != "no file":
        (folder / "shapes-cnn-sup.safetensors").write_bytes(
            (shipped / "shapes-cnn-sup.safetensors").read_bytes())
    capsys.readouterr()
    assert check(folder, tmp_path) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line
    assert not (tmp_path / "w.safetensors").exists()


def shipped_manifest() -> dict:
    return json.loads((SHIPPED / "manifest.json").read_text())


@pytest.mark.parametrize("model", PARAMS["zoo"]["models"])
def test_the_shipped_zoo_is_its_manifest_trained_with_params_settings(model):
    entry = shipped_manifest()["models"][model]
    weights = SHIPPED / entry["file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == entry["sha256"]
    ours = PARAMS["zoo"]["models"][model]
    assert entry["settings"] == {**ours, "seed": PARAMS["zoo"]["seed"]}
    args = shlex.split(entry["command"])
    assert args[:4] == ["python", "-m", "rosetta_steps.train", model]
    for flag, key in (("--steps", "steps"), ("--batch-size", "batch_size"), ("--pool", "pool")):
        assert int(args[args.index(flag) + 1]) == ours[key]
    assert float(args[args.index("--lr") + 1]) == ours["lr"]
    models.load(model, weights)  # loads into the registered architecture


def test_the_supervised_models_held_out_figures_recompute_from_the_shipped_file():
    """The manifest's (and the docs') held-out accuracy of shapes-cnn-sup, recomputed here
    from the shipped weights on the same 1,024 held-out images of the world."""
    entry = shipped_manifest()["models"]["shapes-cnn-sup"]
    _, model = models.load("shapes-cnn-sup", SHIPPED / entry["file"])
    images, labels = data.held_out(entry["settings"]["eval_images"], entry["seed"])
    found = label_metrics(batched(model.eval(), images), labels)
    for key, value in entry["metrics"]["held_out"].items():
        assert found[key] == pytest.approx(value, abs=2 / len(images)), key
    assert found["shape_accuracy"] > 0.9


@pytest.mark.parametrize("model", ["shapes-cnn-ssl", "shapes-vit-mae"])
def test_the_self_supervised_models_probes_recompute_and_beat_their_untrained_twins(model):
    """The manifest's linear probes of a self-supervised model and of its untrained network
    (the same architecture built from the same seed), recomputed from the shipped file: the
    issue's bar is a label accuracy at least 10 points above the untrained network's."""
    entry = shipped_manifest()["models"][model]
    settings = entry["settings"]
    _, trained = models.load(model, SHIPPED / entry["file"])
    untrained = initial(model, entry["seed"])
    images, labels = data.labelled(PROBE_TRAIN, entry["seed"])
    found = probe_report(trained, untrained, images, labels, entry["seed"],
                         settings["eval_images"])
    for key in ("linear_probe", "linear_probe_untrained"):
        for name, value in entry["metrics"][key].items():
            assert found[key][name] == pytest.approx(value, abs=2 / settings["eval_images"]), \
                (key, name)
    gain = (found["linear_probe"]["label_accuracy"]
            - found["linear_probe_untrained"]["label_accuracy"])
    assert gain >= 0.10


# The docs' check of the shipped zoo (docs/reference/models.md, "The shapes zoo"): best-buddy
# pairs of shapes-gan and shapes-cnn-sup on the first shard of images, at params.yaml's K.
FIRST_SHARD_BEST_BUDDIES = 298


def test_a_mining_figure_recomputes_from_the_shipped_files(tmp_path):
    weights = {m: SHIPPED / f"{m}.safetensors" for m in ("shapes-gan", "shapes-cnn-sup")}
    shard = tmp_path / "shard.zarr"
    mine_shard("shapes-gan", [Pair("shapes-cnn-sup", shard)], weights=weights,
               seed=PARAMS["seed"], start=0, count=PARAMS["shard_size"],
               batch_size=PARAMS["batch_size"])
    reduce_pair([shard], tmp_path / "matches.zarr")
    table = best_buddy_table(str(tmp_path / "matches.zarr"), k=PARAMS["k"])
    assert len(table) == FIRST_SHARD_BEST_BUDDIES
    docs = (ROOT / "docs/reference/models.md").read_text()
    assert f"{FIRST_SHARD_BEST_BUDDIES} best-buddy pairs" in docs
