"""Users' own models: a Python file and a builder function, declared in params.yaml.

A lab's generator or encoder joins the zoo without editing the package:

    models:
      my-resnet:
        file: models/my_resnet.py   # relative to the project root, or absolute
        builder: build              # def build(weights: str | None) -> torch.nn.Module
        kind: discriminative        # or generator
        weights: ckpt/resnet.th     # handed to the builder (null: None)
        layers: [layer1, layer2]    # named modules whose outputs are the units (null, for a
                                    # discriminative model: every activation module's maps)
        input: {size: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
      my-dcgan: {file: models/my_dcgan.py, builder: build, kind: generator,
                 layers: [main.2, main.5], latent: {shape: [100, 1, 1]}}

The workflow hands each job the declarations of its models (`--declare NAME=JSON`, written
by `core.options.named_json`) and `declare` registers them. The file is the user's own code
and runs; it is an input of every job that uses it, so editing it reruns them. The builder
gets the declared weights path (None: its own initialisation) whenever it is called, also to
find the model's layers, and returns the model with its weights loaded.
A generator's latent is z ~ N(0, 1) of `latent.shape` and its output an image in [-1, 1].
A file that cannot be imported, a builder that fails or returns no module, and a layer the
model does not have each stop with one line.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ..core.cli import UserError
from ..core.options import parse_named_json
from .generic import activation_modules, post_activation_layers
from .registry import (
    DISCRIMINATIVE,
    GENERATOR,
    Latent,
    ModelSpec,
    Preprocess,
    get,
    one_line,
    register,
)


def _builder(name: str, file: str, builder: str):
    path = Path(file).expanduser()
    if not path.is_file():
        raise UserError(f"{name}: model file {path} not found (models.{name}.file)")
    module_name = f"rosetta_user_model_{abs(hash(str(path.resolve())))}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's code: any error is theirs, in one line
            raise UserError(f"{name}: cannot import {path}: {type(err).__name__}: "
                            f"{one_line(err)}") from None
        sys.modules[module_name] = module
    function = getattr(sys.modules[module_name], builder, None)
    if not callable(function):
        raise UserError(f"{name}: {path} has no function {builder!r} (models.{name}.builder)")
    return function


def _build(name: str, function, weights: str | Path | None) -> nn.Module:
    try:
        model = function(None if weights is None else str(weights))
    except Exception as err:
        raise UserError(f"{name}: its builder failed: {type(err).__name__}: {one_line(err)}"
                        ) from None
    if not isinstance(model, nn.Module):
        raise UserError(f"{name}: its builder returned a {type(model).__name__}, not a "
                        "torch.nn.Module")
    return model


def _quiet_build(name: str, function, weights: str | Path | None) -> nn.Module:
    """`_build` without torch's warning that weights copied into a model built on the meta
    device (to find its modules) go nowhere: that is the point there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "for .*: copying from a non-meta parameter")
        return _build(name, function, weights)


def _generate(shape: tuple[int, ...], model: nn.Module, z: torch.Tensor, _y, _t) -> torch.Tensor:
    return model(z.reshape(z.shape[0], *shape))


def user_spec(name: str, decl: Mapping) -> ModelSpec:
    """The `ModelSpec` of a declaration (the keys of the module docstring)."""
    kind = decl.get("kind")
    if kind not in (GENERATOR, DISCRIMINATIVE):
        raise UserError(f"{name}: models.{name}.kind must be {GENERATOR} or {DISCRIMINATIVE}")
    function = _builder(name, decl.get("file") or "", decl.get("builder") or "build")
    build = partial(_quiet_build, name, function, decl.get("weights"))
    layers = decl.get("layers")
    options: dict = {}
    if kind == GENERATOR:
        shape = tuple(int(s) for s in (decl.get("latent") or {}).get("shape") or ())
        if not shape or not layers:
            raise UserError(f"{name}: a generator needs latent.shape and layers")
        options = {"latent": Latent(dim=math.prod(shape)), "generate": partial(_generate, shape)}
    else:
        given = decl.get("input") or {}
        if "size" not in given:
            raise UserError(f"{name}: a discriminative model needs input.size")
        options = {"preprocess": Preprocess(
            size=int(given["size"]), mean=tuple(given.get("mean") or (0.5, 0.5, 0.5)),
            std=tuple(given.get("std") or (0.5, 0.5, 0.5)))}
    with torch.device("meta"):
        model = build()
    modules = dict(model.named_modules())
    channels_last: tuple[str, ...] = ()
    if layers:
        missing = [layer for layer in layers if layer not in modules]
        if missing:
            raise UserError(f"{name}: the model has no layer {missing[0]!r} (models.{name}."
                            f"layers); its modules include {', '.join(list(modules)[1:9])}")
    elif kind == DISCRIMINATIVE:  # every activation module whose output is a map
        layers, channels_last = post_activation_layers(
            build, activation_modules(model), options["preprocess"].size)
    return ModelSpec(name=name, kind=kind, objective=f"the user's {decl['file']}", build=build,
                     fresh=partial(_quiet_build, name, function, None),
                     layers=tuple(layers), channels_last=channels_last,
                     load_weights=partial(_load, name, function, decl.get("weights")),
                     tags=("user",), **options)


def _load(name: str, function, declared: str | None, model: nn.Module,
          path: str | Path) -> nn.Module:
    """A model built with the weights at `path`: the one `build` made when they are the
    declared ones (as the workflow hands them), so a job reads its checkpoint once."""
    if declared is not None and Path(declared).resolve() == Path(path).resolve():
        return model
    return _build(name, function, path)


def declare(items: Sequence[str] | None) -> None:
    """Register each `--declare NAME=JSON` (a step's option); a name the registry already
    knows is an error unless it is the same declaration."""
    for item in items or []:
        name, decl = parse_named_json(item, "--declare")
        try:
            known = get(name)
        except UserError:
            known = None
        if known is None:
            register(user_spec(name, decl))
        elif "user" not in known.tags:
            raise UserError(f"models.{name}: the package already has a model of that name; "
                            "give yours another")
