"""Which objective trains which model of the shapes zoo, with what default settings, and the
weights and metrics a training run writes (safetensors and JSON, each written atomically).
Deterministic for a seed on CPU."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .. import models
from ..core import world
from ..core.cli import UserError
from ..core.stores import atomic_output
from . import data
from .contrastive import train_contrastive
from .evaluate import judge_generator
from .gan import train_gan
from .loop import TrainSettings
from .mae import train_mae
from .resume import Checkpoint
from .supervised import train_supervised

Trainer = Callable[[nn.Module, TrainSettings], dict]
TRAINERS: dict[str, tuple[Trainer, TrainSettings]] = {
    "shapes-gan": (train_gan, TrainSettings(steps=1200, batch_size=32, lr=2e-4)),
    "shapes-cnn-sup": (train_supervised, TrainSettings(steps=400, batch_size=32, lr=3e-3)),
    "shapes-cnn-ssl": (train_contrastive, TrainSettings(steps=120, batch_size=64, lr=3e-3)),
    "shapes-vit-mae": (train_mae, TrainSettings(steps=150, batch_size=128, lr=2e-3)),
}
RESUMABLE = ("shapes-gan",)  # trainers that take a `checkpoint`
TINY = {"steps": 3, "batch_size": 8, "pool": 64, "eval_images": 32}


def settings_for(name: str, tiny: bool = False, **overrides: int | float | None) -> TrainSettings:
    """The default settings of a zoo model, shrunk by `tiny`, then any explicit overrides."""
    models.get(name)  # an unknown name lists the known ones
    if name not in TRAINERS:
        raise UserError(f"{name!r} is not trainable here; trainable models: "
                        f"{', '.join(TRAINERS)}")
    values = dataclasses.asdict(TRAINERS[name][1])
    if tiny:
        values.update(TINY)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainSettings(**values)
    except ValueError as err:
        raise UserError(f"{name}: {err}") from None


def initial(name: str, seed: int) -> nn.Module:
    """`name` at the random weights its training starts from (the untrained network its
    probes are read against); seeds the global generator, which training goes on drawing
    from."""
    torch.manual_seed(seed)
    return models.get(name).build()


def train(name: str, settings: TrainSettings, judge: str | Path | None = None,
          checkpoint: Checkpoint | None = None) -> tuple[nn.Module, dict]:
    """Train a fresh `name` from `settings.seed`, or go on from `checkpoint` where it holds a
    run (the generator only, the one run that takes hours); returns the model and its
    metrics."""
    spec = models.get(name)
    trainer = TRAINERS[name][0]
    if checkpoint is not None and name not in RESUMABLE:
        raise UserError(f"--checkpoint applies to {', '.join(RESUMABLE)}, whose training takes "
                        f"hours; {name} trains in minutes from the start")
    model = initial(name, settings.seed)
    extra = {} if checkpoint is None else {"checkpoint": checkpoint}
    metrics = trainer(model, settings, **extra)
    if judge is not None:
        _, judge_model = models.load("shapes-cnn-sup", judge)
        real, _ = data.held_out(settings.eval_images, settings.seed)
        z = spec.latent.sample(settings.seed, range(world.HELD_OUT_START, world.HELD_OUT_START
                                                    + settings.eval_images))
        metrics["judge"] = judge_generator(model, judge_model, real, z)
    model.eval()
    return model, {"model": name, "objective": spec.objective,
                   "settings": dataclasses.asdict(settings), "metrics": metrics}


def save(model: nn.Module, report: dict, weights: Path, metrics: Path) -> None:
    """Weights and metrics, each written to a temporary file and renamed when complete."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(weights) as tmp:
        # one metadata key: safetensors writes several in a per-process hash order
        meta = json.dumps({"model": report["model"], "settings": report["settings"]},
                          sort_keys=True)
        save_file(state, str(tmp), metadata={"rosetta_steps": meta})
    with atomic_output(metrics) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
