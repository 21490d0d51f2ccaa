"""Training the shapes zoo: the command, determinism, losses that fall, metrics, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rosetta_steps import models
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.samplesheet import main as sheet_main
from rosetta_steps.train import main as train_main
from rosetta_steps.training import data
from rosetta_steps.training.contrastive import nt_xent
from rosetta_steps.training.evaluate import label_metrics, linear_probe
from rosetta_steps.training.mae import patchify
from rosetta_steps.training.recipes import settings_for, train

ZOO = ("shapes-cnn-sup", "shapes-cnn-ssl", "shapes-vit-mae", "shapes-gan")
LOSS = {"shapes-gan": "d_loss"}  # the critic's loss; the generator's is adversarial


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """The whole zoo trained with --tiny through the command, as the workflow runs it."""
    out = tmp_path_factory.mktemp("zoo")
    for name in ZOO:
        args = [name, "--out", str(out / f"{name}.safetensors"), "--tiny"]
        if name == "shapes-gan":
            args += ["--judge", str(out / "shapes-cnn-sup.safetensors")]
        assert run(train_main, args) == 0
    return out


@pytest.mark.parametrize("name", ZOO)
def test_tiny_training_writes_loadable_weights_and_metrics(tiny_zoo, name):
    report = json.loads((tiny_zoo / f"{name}.json").read_text())
    assert report["model"] == name and report["settings"]["steps"] == 3
    spec, model = models.load(name, tiny_zoo / f"{name}.safetensors")
    fresh = spec.build().state_dict()
    trained = model.state_dict()
    assert trained.keys() == fresh.keys()
    assert any(not torch.equal(trained[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())
    metrics = report["metrics"]
    if name == "shapes-gan":
        judge = metrics["judge"]
        assert 0 <= judge["shapes_found_generated"] <= 1 and judge["diversity_real"] > 0
    elif name == "shapes-cnn-sup":
        assert 0 <= metrics["held_out"]["label_accuracy"] <= 1
    else:
        assert set(metrics) >= {"linear_probe", "linear_probe_untrained"}


@pytest.mark.parametrize("name", ZOO)
def test_training_is_deterministic_for_a_seed(tiny_zoo, name, tmp_path):
    """The same command twice on one machine writes the same bytes (`make zoo` retrains the
    shipped zoo exactly on the machine its manifest names)."""
    args = [name, "--out", str(tmp_path / "again.safetensors"), "--tiny"]
    if name == "shapes-gan":
        args += ["--judge", str(tiny_zoo / "shapes-cnn-sup.safetensors")]
    assert run(train_main, args) == 0
    assert ((tmp_path / "again.safetensors").read_bytes()
            == (tiny_zoo / f"{name}.safetensors").read_bytes())
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"] == json.loads((tiny_zoo / f"{name}.json").read_text())["metrics"]
    assert again["command"].startswith(f"python -m rosetta_steps.train {name} --out ")


@pytest.mark.parametrize("name", ZOO)
def test_a_few_steps_lower_the_loss(name):
    # a small fixed pool seen several times: every objective must make progress on it
    settings = settings_for(name, tiny=True, steps=30, batch_size=16, pool=32)
    _, report = train(name, settings)
    key = LOSS.get(name, "loss")
    assert report["metrics"][f"{key}_last"] < report["metrics"][f"{key}_first"]


def test_label_metrics_by_hand():
    labels = torch.tensor([[1, 0, 0, 0, 1, 0, 0, 0, 0, 0],
                           [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]], dtype=torch.float32)
    logits = torch.where(labels > 0, 1.0, -1.0)
    logits[1, 1] = -1.0  # one wrong label
    m = label_metrics(logits, labels)
    assert m["label_accuracy"] == pytest.approx(19 / 20)
    assert m["shape_accuracy"] == pytest.approx(7 / 8) and m["color_accuracy"] == 1.0
    assert m["exact_match"] == 0.5
    # majority answer: shape 0 and 1 half present (>= 0.5 counts as present), colour 0 always
    assert m["majority_baseline"] == pytest.approx(18 / 20)


def test_linear_probe_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(200, 10, generator=g) < 0.5).float()
    x = torch.cat([y * 2 - 1, torch.randn(200, 5, generator=g)], dim=1)
    assert linear_probe(x[:150], y[:150], x[150:], y[150:])["label_accuracy"] == 1.0


def test_nt_xent_matches_its_definition():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    total = 0.0
    for i in range(6):
        partner = (i + 3) % 6
        others = [j for j in range(6) if j != i]
        logits = torch.stack([z[i] @ z[j] / 0.2 for j in others])
        total += -(z[i] @ z[partner] / 0.2 - torch.logsumexp(logits, 0))
    torch.testing.assert_close(nt_xent(a, b, 0.2), total / 6)


def test_patchify_orders_patches_row_major():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    p = patchify(x, 2)
    assert p.shape == (2, 4, 12)
    torch.testing.assert_close(p[1, 2].reshape(2, 2, 3).permute(2, 0, 1), x[1, :, 2:4, 0:2])


def test_augment_keeps_shape_range_and_differs_per_view():
    x, _ = data.labelled(4, seed=0)
    g = torch.Generator().manual_seed(0)
    a, b = data.augment(x, g), data.augment(x, g)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, b)


def test_sample_sheet(tiny_zoo, tmp_path):
    from PIL import Image
    out = tmp_path / "samples.png"
    assert run(sheet_main, ["--weights", f"shapes-gan={tiny_zoo / 'shapes-gan.safetensors'}",
                            "--out", str(out), "--n", "8"]) == 0
    sheet = Image.open(out)
    assert sheet.width > 2 * 8 * 64 and sheet.height > 64
    state = load_file(str(tiny_zoo / "shapes-gan.safetensors"))
    assert "stem.conv.weight" in state


@pytest.mark.parametrize("args, message", [
    (["resnet-x", "--out", "w.safetensors"], "unknown model 'resnet-x'"),
    (["shapes-gan", "--out", "w.pt"], "ending in .safetensors"),
    (["shapes-gan", "--out", "w.safetensors", "--steps", "0"], "steps must be at least 1"),
    (["shapes-cnn-sup", "--out", "w.safetensors", "--judge", "x"], "--judge applies to"),
    (["shapes-gan", "--out", "w.safetensors", "--judge", "nope"], "train shapes-cnn-sup first"),
])
def test_bad_arguments_are_one_line_errors(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(train_main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())


def test_settings_for_rejects_untrainable_models(monkeypatch):
    from rosetta_steps.models import registry
    spec = registry.ModelSpec(name="frozen", kind=models.DISCRIMINATIVE, objective="none",
                              build=torch.nn.Identity, layers=(),
                              preprocess=models.Preprocess(size=8))
    monkeypatch.setitem(registry._REGISTRY, "frozen", spec)
    with pytest.raises(UserError, match="'frozen' is not trainable here; trainable models: sh"):
        settings_for("frozen")
