"""Users' own models: a file and a builder declared as in params.yaml become models of the
zoo; a broken file, builder or layer stops with one line."""

import json

import pytest
import torch

from rosetta_steps import models
from rosetta_steps.core.cli import UserError
from rosetta_steps.core.options import named_json
from rosetta_steps.models import registry
from rosetta_steps.models.user import declare

GENERATOR = '''
import torch
from torch import nn

def build(weights):
    model = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, 1, 0), nn.ReLU(),
                          nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh())
    if weights is not None:
        model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()
'''
ENCODER = '''
import torch
from torch import nn

def build(weights):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.GELU())

def broken(weights):
    raise ValueError("no such checkpoint")

def not_a_model(weights):
    return 42

def natural(weights):  # as a user writes it: it needs its weights
    net = build(None)
    net.load_state_dict(torch.load(weights, weights_only=True))
    return net.eval()

def with_head(weights):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 5))
'''


@pytest.fixture
def files(tmp_path):
    (tmp_path / "gen.py").write_text(GENERATOR)
    (tmp_path / "enc.py").write_text(ENCODER)
    return tmp_path


def test_declared_models_join_the_zoo_with_their_units(files, tmp_path):
    gen = {"file": str(files / "gen.py"), "builder": "build", "kind": "generator",
           "layers": ["1"], "latent": {"shape": [8, 1, 1]}}
    enc = {"file": str(files / "enc.py"), "builder": "build", "kind": "discriminative",
           "layers": None, "input": {"size": 16}}
    declare([named_json("test-user-gen", gen), named_json("test-user-enc", enc)])
    declare([named_json("test-user-gen", gen)])  # the same again: nothing to do
    g = models.get("test-user-gen")
    assert [(s.name, s.channels, s.size) for s in g.layer_specs()] == [("1", 16, 4)]
    z = g.latent.sample(0, range(2))
    assert z.shape == (2, 8)
    spec, model = models.load("test-user-gen", "random")
    images, maps = spec.run(model, z)
    assert images.shape == (2, 3, 8, 8) and maps["1"].shape == (2, 16, 4, 4)
    # the weights path is handed to the builder
    torch.save({k: torch.ones_like(v) for k, v in model.state_dict().items()}, tmp_path / "w.pt")
    _, loaded = models.load("test-user-gen", tmp_path / "w.pt")
    assert all((v == 1).all() for v in loaded.state_dict().values())
    e = models.get("test-user-enc")  # layers found: every activation module
    assert [(s.name, s.channels, s.size) for s in e.layer_specs()] == [("1", 4, 16), ("3", 6, 8)]
    assert e.preprocess.size == 16


@pytest.mark.parametrize("change, message", [
    ({"file": "/no/such/file.py"}, "model file /no/such/file.py not found"),
    ({"builder": "missing"}, "has no function 'missing'"),
    ({"builder": "broken"}, "its builder failed: ValueError: no such checkpoint"),
    ({"builder": "not_a_model"}, "its builder returned a int, not a torch.nn.Module"),
    ({"layers": ["9"]}, "the model has no layer '9'"),
    ({"input": {}}, "needs input.size"),
])
def test_bad_declarations_stop_with_one_line(files, change, message):
    enc = {"file": str(files / "enc.py"), "builder": "build", "kind": "discriminative",
           "layers": ["1"], "input": {"size": 16}} | change
    with pytest.raises(UserError) as err:
        declare([named_json(f"test-bad-{abs(hash(json.dumps(change)))}", enc)])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_declaration_may_not_take_a_packaged_name(files):
    enc = {"file": str(files / "enc.py"), "builder": "build", "kind": "discriminative",
           "layers": ["1"], "input": {"size": 16}}
    with pytest.raises(UserError, match="already has a model of that name"):
        declare([named_json("shapes-cnn-sup", enc)])
    with pytest.raises(UserError, match="--declare takes NAME=JSON"):
        declare(["oops"])


@pytest.mark.parametrize("name, decl, message", [
    ("test-linear-layer", {"file": "enc.py", "builder": "with_head", "kind": "discriminative",
                           "layers": ["1", "3"], "input": {"size": 16}},
     "test-linear-layer: its forward pass at the declared input.size fails: layer '3' gives "
     "shape (1, 5)"),
    ("test-latent-shape", {"file": "gen.py", "builder": "build", "kind": "generator",
                           "layers": ["1"], "latent": {"shape": [5, 1, 1]}},
     "test-latent-shape: its forward pass at the declared latent.shape fails: "),
])
def test_a_layer_without_maps_or_a_latent_that_does_not_fit_is_one_line(files, name, decl,
                                                                         message, monkeypatch):
    # registered for this test alone: other tests list every model of the process
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    declare([named_json(name, decl | {"file": str(files / decl["file"])})])
    with pytest.raises(UserError) as err:
        models.get(name).layer_specs()
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_the_builder_gets_the_declared_weights_also_to_find_the_layers(files, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    (files / "enc.pt").parent.mkdir(exist_ok=True)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.GELU())
    torch.save({k: torch.full_like(v, 0.5) for k, v in net.state_dict().items()},
               files / "enc.pt")
    enc = {"file": str(files / "enc.py"), "builder": "natural", "kind": "discriminative",
           "weights": str(files / "enc.pt"), "layers": None, "input": {"size": 16}}
    declare([named_json("test-natural", enc)])
    spec = models.get("test-natural")
    assert [(s.name, s.channels, s.size) for s in spec.layer_specs()] == [("1", 4, 16),
                                                                          ("3", 6, 8)]
    _, model = models.load("test-natural", files / "enc.pt")
    assert all((v == 0.5).all() for v in model.state_dict().values())
