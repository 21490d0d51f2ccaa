"""Untrained twins: a discriminative model's architecture, layers and preprocessing at seeded
random weights (the control of issue 36: did training make a unit shared, or would any network
of that shape share it?).

`twin<s>:<D>` names twin s (1, 2, ...) of model D. Its weights are D's own initialisation (its
`build`, or a user's builder called with no weights) under torch's RNG seeded with s, so a twin
is the same in every process and differs across seeds; seeds start at 1, away from
`registry.RANDOM_WEIGHTS_SEED` (0) that random weights of other models use. A freshly
initialised BatchNorm is the identity in eval mode (running mean 0, variance 1), which would
hand the twin an unfair, unnormalised network: `reestimate_batchnorm` sets its running
statistics from the dictionary's own images (cumulative averages over batches, the other
modules in eval mode), and the twin step writes the result as a safetensors file, which
`load(twin, path)` then reads like any weights file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import torch
from torch import nn

from ..core.cli import UserError
from .registry import DISCRIMINATIVE, ModelSpec, get, load_state_dict_file

PATTERN = re.compile(r"twin([1-9][0-9]*):(.+)")


def twin_name(model: str, seed: int) -> str:
    """The name of twin `seed` (1, 2, ...) of `model`."""
    if seed < 1:
        raise ValueError(f"twin seeds start at 1, got {seed}")
    return f"twin{seed}:{model}"


def parse_twin(name: str) -> tuple[str, int] | None:
    """(model, seed) of a twin's name, or None for any other name."""
    match = PATTERN.fullmatch(name)
    return (match.group(2), int(match.group(1))) if match else None


def _seeded(build, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def twin_spec(name: str) -> ModelSpec:
    """The spec of `twin<s>:<D>`: D's, with a build seeded by s and weights read as a state
    dict (what the twin step writes), never D's published ones."""
    parsed = parse_twin(name)
    if parsed is None:
        raise UserError(f"unknown model {name!r}: a twin is named twin<seed>:<model>, seeds "
                        "from 1 (e.g. twin1:shapes-cnn-sup)")
    model, seed = parsed
    spec = get(model)
    if spec.kind != DISCRIMINATIVE:
        raise UserError(f"{name}: {model} is a {spec.kind}; twins are of discriminative models")

    def build() -> nn.Module:
        return _seeded(spec.fresh or spec.build, seed)

    return replace(spec, name=name, objective=f"untrained twin (seed {seed}) of {model}",
                   build=build, fresh=None, load_weights=load_state_dict_file, source=None,
                   weights_hint="made by `python -m rosetta_steps.twin`",
                   tags=(*spec.tags, "twin"))


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats]


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, forward, inputs: Iterable) -> int:
    """Set the running statistics of every BatchNorm of `model` to the cumulative averages of
    its batch statistics over `inputs` (`forward(model, x)` runs a batch; BatchNorm layers in
    train mode, the rest in eval mode); returns the number of BatchNorm layers. Each batch
    counts once, as torch's `momentum=None` averages them: the running mean is the mean of
    the batches' means, the running variance the mean of their unbiased variances."""
    norms = batchnorms(model)
    if not norms:
        return 0
    model.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for x in inputs:
            forward(model, x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
            m.eval()
    return len(norms)
