"""The steps' shared options: `--weights NAME=PATH`, and defaults equal to params.yaml's, so a
step run by hand does what the workflow does."""

from __future__ import annotations

import argparse
import importlib

import pytest
import yaml
from workflow_project import ROOT

from rosetta_steps.core.cli import UserError
from rosetta_steps.core.options import parse_weights

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
MINING = {"seed": "seed", "batch_size": "batch_size", "device": "device"}
OPTIMISER = {"seed": "seed", "steps": "inversion.steps", "lr": "inversion.lr",
             "alpha": "inversion.alpha", "reg": "inversion.reg", "device": "device"}
# step -> {option dest: params.yaml key its default must equal}
DEFAULTS = {
    "sample": MINING,
    "match": MINING,
    "bestbuddies": {"k": "k", "rule": "bb_rule"},
    "rosetta": {"k": "k", "rule": "bb_rule"},
    "dictionary": {"k": "k", "examples": "examples", "device": "device"},
    "pairwise": {"examples": "examples", "device": "device"},
    "invert": {**OPTIMISER, "images": "inversion.images", "rec": "inversion.rec",
               "beta": "inversion.beta"},
    "neurons": {**OPTIMISER, "starts": "inversion.starts"},
    "ood": OPTIMISER,
    "edit": {"seed": "seed", "device": "device", **{k: f"edits.{k}" for k in (
        "images", "steps", "lr", "alpha", "shift", "zoom", "scale", "concept")}},
    "samplesheet": {"seed": "seed"},
    "train": {"seed": "zoo.seed"},
}


class Parsed(Exception):
    """Raised in place of parsing, carrying the step's parser."""


def step_parser(step: str, monkeypatch) -> argparse.ArgumentParser:
    def capture(self, *args, **kwargs):
        raise Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Parsed) as caught:
        importlib.import_module(f"rosetta_steps.{step}").main([])
    return caught.value.args[0]


def param(key: str):
    value = PARAMS
    for part in key.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize("step", sorted(DEFAULTS))
def test_step_defaults_equal_params_yaml(step, monkeypatch):
    defaults = {a.dest: a.default for a in step_parser(step, monkeypatch)._actions}
    assert {dest: defaults[dest] for dest in DEFAULTS[step]} == \
        {dest: param(key) for dest, key in DEFAULTS[step].items()}


def test_weights_are_name_equals_path():
    assert parse_weights(["a=x.pt", "b=dir/y=z.pt"]) == {"a": "x.pt", "b": "dir/y=z.pt"}
    assert parse_weights(None) == {}
    for bad, message in ((["x.pt"], "takes NAME=PATH"), (["a=1", "a=2"], "names a twice"),
                         (["c=1"], "does not load")):
        with pytest.raises(UserError, match=message):
            parse_weights(bad, ["a", "b"] if message == "does not load" else None)
