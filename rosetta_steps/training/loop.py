"""The optimisation loop every zoo objective shares: AdamW, cosine schedule, a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from tqdm import tqdm


@dataclass(frozen=True)
class TrainSettings:
    """How long and on what a zoo model trains (params.yaml's `zoo` section)."""

    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    pool: int = 4096  # rendered training images, cycled through in epochs
    eval_images: int = 1024  # held-out images for the metrics

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "pool", "eval_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size > self.pool:
            raise ValueError(f"batch_size {self.batch_size} exceeds the pool of {self.pool} "
                             "training images")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def cosine_adamw(params: Iterable[torch.nn.Parameter], lr: float, steps: int,
                 weight_decay: float = 0.05, betas: tuple[float, float] = (0.9, 0.999),
                 warmup: float = 0.05) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """AdamW with linear warm-up then cosine decay to zero over `steps`."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    warm = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, steps - warm)
        return 0.5 * (1 + torch.cos(torch.tensor(torch.pi * progress)).item())

    return opt, LambdaLR(opt, factor)


def optimise(loss_fn: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor],
             opt: torch.optim.Optimizer, sched: LRScheduler | None,
             steps: int, desc: str) -> list[float]:
    """Minimise loss_fn over the index batches; returns the loss of every step."""
    losses = []
    bar = tqdm(batches, total=steps, desc=desc, unit="step", mininterval=1.0)
    for idx in bar:
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    return losses


def loss_summary(losses: list[float], prefix: str = "loss") -> dict[str, float]:
    """Mean loss over the first and last tenth of training (a few steps lower each loss)."""
    k = max(1, len(losses) // 10)
    return {f"{prefix}_first": sum(losses[:k]) / k, f"{prefix}_last": sum(losses[-k:]) / k}
