"""Self-supervised contrastive learning (SimCLR: two augmented views, NT-Xent loss), no labels.

Labels are used only afterwards, by the linear probe that shows what the features learned.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .evaluate import probe_report
from .loop import TrainSettings, cosine_adamw, loss_summary, optimise

TEMPERATURE = 0.2


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner view among all 2n - 1 others."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = a.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def projection_head(features: int, out: int = 64) -> nn.Module:
    """The MLP between the backbone and the loss (discarded after training)."""
    return nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, out))


def train_contrastive(model: nn.Module, settings: TrainSettings) -> dict:
    """Train a timm backbone (num_classes=0) with SimCLR; linear-probe it afterwards."""
    untrained = copy.deepcopy(model)
    g = torch.Generator().manual_seed(settings.seed)
    images, labels = data.labelled(settings.pool, settings.seed)
    head = projection_head(model.num_features)
    model.to(memory_format=torch.channels_last).train()

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        x = images[idx]
        views = torch.cat([data.augment(x, g), data.augment(x, g)])
        views = views.contiguous(memory_format=torch.channels_last)
        a, b = head(model(views)).chunk(2)
        return nt_xent(a, b)

    params = list(model.parameters()) + list(head.parameters())
    opt, sched = cosine_adamw(params, settings.lr, settings.steps, weight_decay=1e-4)
    batches = data.index_batches(settings.pool, settings.batch_size, settings.steps, g)
    losses = optimise(loss_fn, batches, opt, sched, settings.steps, "shapes-cnn-ssl")
    model.to(memory_format=torch.contiguous_format)
    return {**loss_summary(losses),
            **probe_report(model, untrained, images, labels, settings.seed,
                            settings.eval_images)}
