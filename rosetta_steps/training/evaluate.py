"""Metrics that show a zoo model learned: label accuracy, linear probes, a GAN's judged samples,
and a sheet of real images next to a generator's samples for a person to judge it by.

Accuracies are per label (a shape type or colour present or not), averaged over labels, next
to the majority baseline (always answering each label's most common value) and to the same
probe on the untrained architecture, so a number can be read against chance.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import models
from ..core import world
from ..core.images import grid, side_by_side, to_uint8
from . import data

PROBE_TRAIN = 2048  # training images a linear probe is fitted on


def label_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per-label and exact-set accuracy of multi-label logits, with the majority baselines."""
    pred = logits > 0
    truth = labels > 0.5
    majority = truth.float().mean(0) >= 0.5
    n_shapes = len(world.SHAPES)
    correct = pred == truth
    return {
        "label_accuracy": correct.float().mean().item(),
        "shape_accuracy": correct[:, :n_shapes].float().mean().item(),
        "color_accuracy": correct[:, n_shapes:].float().mean().item(),
        "exact_match": correct.all(1).float().mean().item(),
        "majority_baseline": (truth == majority).float().mean().item(),
        "exact_match_baseline": (truth == majority).all(1).float().mean().item(),
    }


@torch.no_grad()
def batched(fn, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """fn over x in batches, concatenated (eval-time forward passes without a graph)."""
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, steps: int = 100) -> dict[str, float]:
    """Fit a multi-label logistic regression on frozen features; score it held-out."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    probe = nn.Linear(train_x.shape[1], train_y.shape[1])
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(probe.parameters(), lr=0.5, max_iter=steps,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(probe(train_x), train_y)
        loss = loss + 1e-3 * probe.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return label_metrics(probe(test_x), test_y)


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """A timm model's pooled pre-head features (`forward_features` + `forward_head`)."""
    def features(x: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(x), pre_logits=True)
    model.eval()
    return batched(features, images)


def probe_metrics(model: nn.Module, untrained: nn.Module, train: tuple, test: tuple
                  ) -> dict[str, dict[str, float]]:
    """Linear probe on the trained model and on the same architecture untrained."""
    out = {}
    for key, m in (("linear_probe", model), ("linear_probe_untrained", untrained)):
        out[key] = linear_probe(pooled_features(m, train[0]), train[1],
                                pooled_features(m, test[0]), test[1])
    return out


def probe_report(model: nn.Module, untrained: nn.Module, images: torch.Tensor,
                 labels: torch.Tensor, seed: int, eval_images: int
                 ) -> dict[str, dict[str, float]]:
    """Probes fitted on the first PROBE_TRAIN training images, scored on held-out ones."""
    n = min(PROBE_TRAIN, len(images))
    return probe_metrics(model, untrained, (images[:n], labels[:n]),
                         data.held_out(eval_images, seed))


def diversity(features: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance of feature vectors (0 for a collapsed generator)."""
    return torch.pdist(features).mean().item()


def judge_generator(generator: nn.Module, judge: nn.Module, real: torch.Tensor,
                    z: torch.Tensor) -> dict[str, float]:
    """How the supervised model sees generated images next to real ones.

    `shapes_found`: share of images where it detects at least one shape type. `diversity`:
    mean pairwise distance of its pooled features. `label_frequency`: how often it detects
    each label; a generator that covers the world matches the real frequencies.
    """
    generator.eval()
    judge.eval()
    fake = batched(generator, z)
    out: dict[str, float] = {}
    freq: dict[str, dict[str, float]] = {}
    for key, images in (("generated", fake), ("real", real)):
        logits = batched(judge, images)
        found = (logits[:, :len(world.SHAPES)] > 0).any(1).float().mean().item()
        out[f"shapes_found_{key}"] = found
        out[f"diversity_{key}"] = diversity(pooled_features(judge, images))
        rate = (logits > 0).float().mean(0).tolist()
        freq[key] = dict(zip(world.SHAPES + world.COLORS, rate, strict=True))
    return {**out, "label_frequency": freq}


@torch.no_grad()
def sample_sheet(gan: str, weights: str | Path | None, n: int = 32, seed: int = 0,
                 cols: int = 8) -> Image.Image:
    """Real images (held-out indices of the world) next to `n` samples of the generator."""
    spec, model = models.load(gan, weights)
    z = spec.latent.sample(seed, range(world.HELD_OUT_START, world.HELD_OUT_START + n))
    fake = to_uint8(spec.generate(model, z, None, None))
    real = world.render(n, seed, start=world.HELD_OUT_START).images
    return side_by_side({"real (shapes world)": grid(real, cols),
                         f"generated ({gan})": grid(fake, cols)})
