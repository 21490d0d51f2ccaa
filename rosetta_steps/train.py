"""`python -m rosetta_steps.train MODEL --out WEIGHTS`: train one model of the shapes zoo.

Deterministic for a seed on CPU. Writes the weights (safetensors) and a JSON of training
metrics next to them (or at --metrics): losses at the start and end of training and the
held-out figures that show the model learned (see `training.evaluate`). `--tiny` runs the same
code for a few steps, for tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from . import models
from .cli import UserError, run
from .devices import set_threads
from .stores import atomic_output
from .training import data
from .training.contrastive import train_contrastive
from .training.evaluate import judge_generator
from .training.gan import train_gan
from .training.loop import Settings
from .training.mae import train_mae
from .training.supervised import train_supervised

Trainer = Callable[[nn.Module, Settings], dict]
TRAINERS: dict[str, tuple[Trainer, Settings]] = {
    "shapes-gan": (train_gan, Settings(steps=1200, batch_size=32, lr=2e-4)),
    "shapes-cnn-sup": (train_supervised, Settings(steps=400, batch_size=32, lr=3e-3)),
    "shapes-cnn-ssl": (train_contrastive, Settings(steps=120, batch_size=64, lr=3e-3)),
    "shapes-vit-mae": (train_mae, Settings(steps=150, batch_size=128, lr=2e-3)),
}
HELD_OUT_LATENTS = data.HELD_OUT_START  # the GAN is judged on latents no other step uses
TINY = {"steps": 3, "batch_size": 8, "pool": 64, "eval_images": 32}


def settings_for(name: str, tiny: bool = False, **overrides: int | float | None) -> Settings:
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
        return Settings(**values)
    except ValueError as err:
        raise UserError(f"{name}: {err}") from None


def train(name: str, settings: Settings, judge: str | Path | None = None
          ) -> tuple[nn.Module, dict]:
    """Train a fresh `name` from `settings.seed`; returns the model and its metrics."""
    spec = models.get(name)
    trainer = TRAINERS[name][0]
    torch.manual_seed(settings.seed)
    model = spec.build()
    metrics = trainer(model, settings)
    if judge is not None:
        _, judge_model = models.load("shapes-cnn-sup", judge)
        real, _ = data.held_out(settings.eval_images, settings.seed)
        z = spec.latent.sample(settings.seed, range(HELD_OUT_LATENTS, HELD_OUT_LATENTS
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rosetta_steps.train", description=__doc__)
    parser.add_argument("model", help="a trainable zoo model, e.g. shapes-gan")
    parser.add_argument("--out", required=True, type=Path, help="weights file (.safetensors)")
    parser.add_argument("--metrics", type=Path, help="metrics JSON (default: next to --out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--pool", type=int, help="rendered training images")
    parser.add_argument("--eval-images", type=int, help="held-out images for the metrics")
    parser.add_argument("--tiny", action="store_true", help="a few steps, for tests")
    parser.add_argument("--judge", type=Path,
                        help="shapes-cnn-sup weights that judge a generator's samples")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        raise UserError(f"--out {args.out}: weights are written as .safetensors; "
                        "give a path ending in .safetensors")
    settings = settings_for(args.model, args.tiny, seed=args.seed, steps=args.steps,
                            batch_size=args.batch_size, lr=args.lr, pool=args.pool,
                            eval_images=args.eval_images)
    if args.judge is not None and models.get(args.model).kind != models.GENERATOR:
        raise UserError(f"--judge applies to generators; {args.model} is discriminative")
    if args.judge is not None and not args.judge.is_file():
        raise UserError(f"--judge {args.judge} not found; train shapes-cnn-sup first")
    set_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)  # tiny Adam moments and weights would slow CPU math
    model, report = train(args.model, settings, args.judge)
    save(model, report, args.out, args.metrics or args.out.with_suffix(".json"))


if __name__ == "__main__":
    raise SystemExit(run(main))
