"""Resuming training: checkpoints that let a long run stop and go on where it stopped (the
shapes GAN trains for hours on a CPU, longer than one sitting).

A checkpoint holds everything the next step depends on: the networks, their optimisers, the
generator's moving average, the random generator and the batch order, the step and the losses
so far. It is written atomically every few steps and read back with
`torch.load(weights_only=True)`, which rebuilds tensors and plain containers and runs no code
from the file. A run resumed from a checkpoint ends with the same weights, bit for bit, as one
that never stopped; since the learning rate is constant, `--steps` may also grow between runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.cli import UserError
from ..core.stores import atomic_output
from .loop import TrainSettings

# What must match for a run to go on from a checkpoint; `steps` and `eval_images` may change.
SAME = ("seed", "batch_size", "lr", "pool")


@dataclass(frozen=True)
class Checkpoint:
    """Where a run's state is saved, and every how many steps."""

    path: Path
    every: int = 250

    def __post_init__(self) -> None:
        if self.every < 1:
            raise UserError(f"--checkpoint-every must be at least 1, got {self.every}")

    def load(self, model: str, settings: TrainSettings) -> dict | None:
        """The saved state of a run of `model` with `settings`, or None if there is none yet."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            saved, step = state["model"], state["step"]
            asked = dataclasses.asdict(settings)
            differ = [f"{k} {state['settings'][k]} (asked {asked[k]})" for k in SAME
                      if state["settings"][k] != asked[k]]
        except Exception as err:  # an unreadable file: one line, whatever the reader raised
            raise UserError(f"--checkpoint {self.path} is not a training checkpoint "
                            f"({type(err).__name__}); remove it to train from the start"
                            ) from None
        if saved != model:
            raise UserError(f"--checkpoint {self.path} is a run of {saved}, not {model}; "
                            "give another path")
        if differ:
            raise UserError(f"--checkpoint {self.path} was trained with {', '.join(differ)}; "
                            "ask for the same settings, or give another path to start afresh")
        if step > settings.steps:
            raise UserError(f"--checkpoint {self.path} is at step {step}, past --steps "
                            f"{settings.steps}; ask for at least {step} steps")
        return state

    def due(self, step: int, steps: int) -> bool:
        """Whether to save after `step` steps of `steps`: every `every` steps, and at the end."""
        return step % self.every == 0 or step == steps

    def save(self, model: str, settings: TrainSettings, step: int, **state: object) -> None:
        with atomic_output(self.path) as tmp:
            torch.save({"model": model, "settings": dataclasses.asdict(settings),
                        "step": step, **state}, tmp)
