"""An example of a user's own generator, declared in params.yaml's `models:` with
`kind: generator` (docs/guides/own-models.md): PyTorch's DCGAN for 64 x 64 images.

The workflow calls `build(weights)` (the path of `models.<name>.weights`, None when it is
null) and feeds the model z ~ N(0, 1) shaped as `latent.shape` ([100, 1, 1] here) with a batch
dimension in front; the model must return images in [-1, 1], [batch, 3, height, width].
"""

from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Four transposed-convolution blocks; their ReLUs main.2, main.5, main.8 and main.11 give
    512, 256, 128 and 64 maps of 4, 8, 16 and 32 px."""

    def __init__(self, latent: int = 100, width: int = 64) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]

        self.main = nn.Sequential(
            *block(latent, width * 8, 1, 0), *block(width * 8, width * 4, 2, 1),
            *block(width * 4, width * 2, 2, 1), *block(width * 2, width, 2, 1),
            nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def build(weights: str | None) -> nn.Module:
    """The generator with the state dict saved at `weights` loaded (fresh weights when None)."""
    model = Generator()
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()

