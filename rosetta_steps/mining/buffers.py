"""Scratch tensors reused from batch to batch, so streaming statistics allocate once.

On CPU a fresh large tensor is paged in on first touch, which costs more than the arithmetic
done on it; `CorrelationAccumulator` (Eq. 1-2) therefore keeps its per-batch temporaries here.
"""

from __future__ import annotations

import math

import torch


class Buffers:
    """Buffers by role. A role's buffer grows to the largest shape asked for, so temporaries
    of different shapes that are never alive at once share one role."""

    def __init__(self, device: torch.device):
        self.device = device
        self.storage: dict[tuple, torch.Tensor] = {}

    def __call__(self, role: tuple, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        numel = math.prod(shape)
        t = self.storage.get(role)
        if t is None or t.numel() < numel or t.dtype != dtype:
            t = self.storage[role] = torch.empty(numel, dtype=dtype, device=self.device)
        return t[:numel].view(shape)
