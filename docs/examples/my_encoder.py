"""An example of a user's own encoder, declared in params.yaml's `models:`
(docs/guides/own-models.md).

The workflow imports this file and calls `build(weights)`: the path of params.yaml's
`models.<name>.weights` (None when it is null), and it wants the model back in eval mode with
those weights loaded. The file may import anything; only the builder (`build` here) is
required.
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Three convolution blocks and a linear head: the ReLUs features.1, .3 and .5 give
    16, 32 and 64 maps (the units the workflow hooks)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def build(weights: str | None) -> nn.Module:
    """The model the workflow mines: weights loaded from `weights` (a state dict saved with
    torch.save), or a fresh initialisation when it is None."""
    model = SmallCNN()
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()

