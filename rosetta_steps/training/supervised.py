"""Supervised multi-label classification: which shape types and colours are in the image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .evaluate import batched, label_metrics
from .loop import TrainSettings, cosine_adamw, loss_summary, optimise


def train_supervised(model: nn.Module, settings: TrainSettings) -> dict:
    """Train `model` (logits for shapes then colours) with BCE; held-out metrics after."""
    g = torch.Generator().manual_seed(settings.seed)
    images, labels = data.labelled(settings.pool, settings.seed)
    images = images.contiguous(memory_format=torch.channels_last)
    model.to(memory_format=torch.channels_last).train()

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        x = images[idx]
        flip = torch.rand(len(idx), generator=g) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return F.binary_cross_entropy_with_logits(model(x), labels[idx])

    opt, sched = cosine_adamw(model.parameters(), settings.lr, settings.steps)
    batches = data.index_batches(settings.pool, settings.batch_size, settings.steps, g)
    losses = optimise(loss_fn, batches, opt, sched, settings.steps, "shapes-cnn-sup")
    model.to(memory_format=torch.contiguous_format).eval()
    test_x, test_y = data.held_out(settings.eval_images, settings.seed)
    return {**loss_summary(losses), "held_out": label_metrics(batched(model, test_x), test_y)}
