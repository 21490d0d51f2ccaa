"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018): the perceptual distance of the paper's Table 1 and an optional
reconstruction loss of Eq. 7, through the `lpips` package (AlexNet, v0.1 linear weights).

The package ships its learned linear layers; AlexNet's ImageNet weights are torchvision's
file, which nothing here downloads. LPIPS is computed only where asked for (the table's
`lpips`, the loss `rec: lpips`), and then needs that file in torch's cache
(`$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`); without it, asking is a one-line
user error.
"""

from __future__ import annotations

import pickle
import warnings
from functools import cache
from pathlib import Path

import torch

from ..core.cli import UserError
from ..models.weights import torch_checkpoints_dir

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1


def alexnet_weights() -> Path:
    """Where torchvision keeps AlexNet's ImageNet weights (read at each call)."""
    return torch_checkpoints_dir() / ALEXNET_FILE


@cache
def _network(path: Path, device: str) -> torch.nn.Module:
    """LPIPS with its AlexNet built at random, then `path` loaded by this project as tensors
    only (`weights_only`): torchvision's own loader would unpickle a file left in a cache
    with code in it."""
    import lpips
    with warnings.catch_warnings():  # lpips asks torchvision by its deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a plain AlexNet state dict ({first[:200]}): delete it "
                        "and copy torchvision's file again") from None
    layers = {int(name): m for part in net.net.children() if isinstance(part, torch.nn.Module)
              for name, m in part.named_children()}
    wanted = {f"features.{i}.{p}" for i, m in layers.items() for p, _ in m.named_parameters()}
    if not isinstance(state, dict) or not wanted <= set(state):
        raise UserError(f"{path} lacks AlexNet's feature weights ({', '.join(sorted(wanted))})")
    with torch.no_grad():
        for key in wanted:
            _, index, param = key.split(".")
            getattr(layers[int(index)], param).copy_(state[key])
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to(device)


def require() -> Path:
    """AlexNet's weights file, or a one-line user error saying how to get it."""
    path = alexnet_weights()
    if not path.is_file():
        raise UserError(f"LPIPS needs torchvision's AlexNet weights at {path}: run "
                        "torchvision.models.alexnet(weights='IMAGENET1K_V1') on a connected "
                        "machine and copy the file there, or use an l1/l2 loss")
    return path


def lpips_distance(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """LPIPS of each image to its target, [batch]; both [batch, 3, h, w] in [-1, 1].
    Differentiable in `images`."""
    net = _network(require(), str(images.device))
    return net(images, targets.to(images.dtype)).flatten()
