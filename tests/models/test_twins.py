"""Untrained twins: bit-reproducible per seed, different across seeds, BatchNorm statistics
re-estimated as cumulative averages (checked by hand), users' builders called without
weights; and the twin step's file loads as the twin."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from rosetta_steps import models, twin
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.options import named_json
from rosetta_steps.models import registry
from rosetta_steps.models.untrained import parse_twin, reestimate_batchnorm, twin_name
from rosetta_steps.models.user import declare


def _params(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_twins_are_reproducible_per_seed_and_differ_across_seeds():
    one, again, two = (models.load(n)[1] for n in
                       ("twin1:shapes-cnn-sup", "twin1:shapes-cnn-sup", "twin2:shapes-cnn-sup"))
    a, b, c = _params(one), _params(again), _params(two)
    weights = [k for k in a if k.endswith("weight") and a[k].ndim > 1]  # not BN's ones
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert weights and all(not torch.equal(a[k], c[k]) for k in weights)
    plain = _params(models.load("shapes-cnn-sup", "random")[1])  # seed 0: not a twin's
    assert not torch.equal(plain[weights[0]], a[weights[0]])
    spec = models.get("twin1:shapes-cnn-sup")
    base = models.get("shapes-cnn-sup")
    assert spec.layers == base.layers and spec.preprocess == base.preprocess
    assert "twin" in spec.tags and spec.source is None


def test_names_of_twins():
    assert twin_name("timm:resnet18", 3) == "twin3:timm:resnet18"
    assert parse_twin("twin3:timm:resnet18") == ("timm:resnet18", 3)
    assert parse_twin("twin0:x") is None and parse_twin("twinx:shapes-cnn-sup") is None
    with pytest.raises(UserError, match="a twin is named twin<seed>:<model>"):
        models.get("twin0:shapes-cnn-sup")
    with pytest.raises(UserError, match="twins are of discriminative models"):
        models.get("twin1:shapes-gan")
    with pytest.raises(ValueError, match="start at 1"):
        twin_name("shapes-cnn-sup", 0)


def test_batchnorm_statistics_are_the_cumulative_averages_of_the_batches():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 1)
    model = nn.Sequential(conv, nn.BatchNorm2d(2), nn.Dropout(0.5))
    batches = [torch.randn(4, 1, 3, 3) * s + s for s in (1.0, 2.0, 3.0)]
    with torch.no_grad():
        outs = [conv(x) for x in batches]
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.transpose(0, 1).reshape(2, -1).var(dim=1, unbiased=True)
                       for o in outs]).mean(0)
    assert reestimate_batchnorm(model, lambda m, x: m(x), batches) == 1
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert bn.num_batches_tracked == 3 and bn.momentum == 0.1  # restored
    assert not model.training and not bn.training and not model[2].training
    assert reestimate_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1)), lambda m, x: m(x),
                                batches) == 0


def test_a_users_model_gets_its_twin_from_its_builder_without_weights(tmp_path, monkeypatch):
    models.names()  # the providers register into the real registry, not this test's copy
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RESOLVED", {})
    (tmp_path / "enc.py").write_text('''
import torch
from torch import nn
CALLS = []

def build(weights):
    CALLS.append(weights)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    if weights is not None:
        net.load_state_dict(torch.load(weights, weights_only=True))
    return net
''')
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    torch.save({k: torch.ones_like(v) for k, v in model.state_dict().items()},
               tmp_path / "w.pt")
    declare([named_json("test-twin-user", {
        "file": str(tmp_path / "enc.py"), "builder": "build", "kind": "discriminative",
        "weights": str(tmp_path / "w.pt"), "layers": ["1"], "input": {"size": 8}})])
    _, trained = models.load("test-twin-user", tmp_path / "w.pt")
    assert all((v == 1).all() for v in trained.state_dict().values())
    _, one = models.load("twin1:test-twin-user")
    _, again = models.load("twin1:test-twin-user")
    assert not (one[0].weight == 1).all()
    assert torch.equal(one[0].weight, again[0].weight)


def test_the_twin_step_writes_weights_that_load_as_the_twin(tmp_path, capsys):
    out = tmp_path / "t.safetensors"
    args = ["--gan", "shapes-gan", "--weights", "shapes-gan=random", "--twin",
            "twin2:shapes-cnn-sup", "--count", "8", "--batch-size", "4", "--device", "cpu",
            "--out", str(out)]
    assert run(twin.main, args) == 0
    state = load_file(str(out))
    fresh = models.load("twin2:shapes-cnn-sup")[1].state_dict()
    loaded = models.load("twin2:shapes-cnn-sup", out)[1].state_dict()
    assert all(torch.equal(state[k], loaded[k]) for k in state)
    means = [k for k in state if k.endswith("running_mean")]
    assert means and all(not torch.equal(state[k], fresh[k]) for k in means)  # re-estimated
    conv = [k for k in state if k.endswith("weight") and state[k].ndim > 1]
    assert conv and all(torch.equal(state[k], fresh[k]) for k in conv)  # the twin's weights
    again = tmp_path / "again.safetensors"
    assert run(twin.main, [*args[:-1], str(again)]) == 0
    assert run(twin.main, [*args[:5], "shapes-cnn-sup", *args[6:]]) == 2
    assert "not an untrained twin's name" in capsys.readouterr().err
    second = load_file(str(again))
    assert all(torch.equal(state[k], second[k]) for k in state)  # bit for bit
