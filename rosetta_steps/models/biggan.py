"""BigGAN-deep (128, 256, 512 px) through the pytorch-pretrained-biggan package.

The package holds the architecture and the configurations of the three published generators
(class-conditional on ImageNet-1k, z of 128 dimensions, truncation in (0, 1] that also selects
the batch-norm statistics). Its published checkpoints are a folder with `config.json` and
`pytorch_model.bin` (a state dict); `load_weights` reads them with
`torch.load(weights_only=True)`, never the package's downloader. The hooked layers are the
ones the original Rosetta code hooks: every module with "conv" in its name, i.e. each
generator block's four convolutions `generator.layers.{i}.conv_{0..3}`, the self-attention
block's 1 x 1 convolutions and the final `generator.conv_to_rgb` (conv outputs, as there).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.cli import UserError

Z_DIM = 128
NUM_CLASSES = 1000
_ATTENTION = ("snconv1x1_theta", "snconv1x1_phi", "snconv1x1_g", "snconv1x1_o_conv")
# The package's published configurations (pytorch_pretrained_biggan/convert_tf_to_pytorch.py):
# (upsample?, in, out) channel multiples of 128 per block, attention before block 8.
_BLOCKS = {
    128: "F16.16 T16.16 F16.16 T16.8 F8.8 T8.4 F4.4 T4.2 F2.2 T2.1",
    256: "F16.16 T16.16 F16.16 T16.8 F8.8 T8.8 F8.8 T8.4 F4.4 T4.2 F2.2 T2.1",
    512: "F16.16 T16.16 F16.16 T16.8 F8.8 T8.8 F8.8 T8.4 F4.4 T4.2 F2.2 T2.1 F1.1 T1.1",
}
ATTENTION_AT = 8
URL = "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-{res}-{file}"


def config(resolution: int) -> dict:
    """The published config.json of BigGAN-deep-`resolution`, as a dict."""
    layers = [(b[0] == "T", *map(int, b[1:].split("."))) for b in _BLOCKS[resolution].split()]
    return {"output_dim": resolution, "z_dim": Z_DIM, "class_embed_dim": 128,
            "channel_width": 128, "num_classes": NUM_CLASSES, "layers": layers,
            "attention_layer_position": ATTENTION_AT, "eps": 1e-4, "n_stats": 51}


def build(resolution: int) -> nn.Module:
    """BigGAN-deep with the package's random initialisation, made usable: the final batch
    norm's affine parameters (left uninitialised by the package) set to 1 and 0, and the
    spectral norms' singular vectors settled by power iteration, so random weights give
    finite images (random vectors make the estimated norms tiny and activations explode)."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig
    model = BigGAN(BigGANConfig.from_dict(config(resolution)))
    bn = model.generator.bn
    device = model.embeddings.weight.device  # the package makes these two on the CPU
    bn.weight = nn.Parameter(torch.ones(bn.num_features, device=device))
    bn.bias = nn.Parameter(torch.zeros(bn.num_features, device=device))
    if device.type != "meta":  # shape-only builds need no values
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "weight_orig") and hasattr(module, "weight_v"):
                    w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                    u, v = module.weight_u, module.weight_v
                    for _ in range(10):
                        v.copy_(F.normalize(w.t() @ u, dim=0, eps=1e-12))
                        u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))
    return model


def layer_names(resolution: int) -> tuple[str, ...]:
    """Every module with "conv" in its name, in the order `named_modules` gives them."""
    names = []
    for i in range(len(_BLOCKS[resolution].split())):
        if i == ATTENTION_AT:
            names += [f"generator.layers.{i}.{n}" for n in _ATTENTION]
        k = i + (i >= ATTENTION_AT)
        names += [f"generator.layers.{k}.conv_{j}" for j in range(4)]
    return (*names, "generator.conv_to_rgb")


def _same_config(found: dict, expected: dict) -> bool:
    norm = {**found, "layers": [tuple(x) for x in found.get("layers", [])]}
    return all(norm.get(k) == v for k, v in expected.items())


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a published checkpoint: its folder, or its pytorch_model.bin with or without
    config.json next to it (a config, when present, must match this model)."""
    folder, weights = (path, path / "pytorch_model.bin") if path.is_dir() else (path.parent, path)
    if not weights.is_file():
        raise ValueError(f"no pytorch_model.bin in {folder}")
    expected = config(model.config.output_dim)
    config_file = folder / "config.json"
    if config_file.is_file() and not _same_config(json.loads(config_file.read_text()), expected):
        raise ValueError(f"{config_file} is not BigGAN-deep-{expected['output_dim']}'s config")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, _ = model.load_state_dict(state, strict=False)  # as the package loads it
    if missing:
        raise ValueError(f"{len(missing)} tensors missing from the checkpoint, e.g. {missing[0]}")


def generate(model: nn.Module, z: torch.Tensor, y: torch.Tensor | None,
             truncation: float | None, default: float = 1.0) -> torch.Tensor:
    """Images of classes `y` (indices [batch]) from z: one-hot labels, truncation (0, 1]."""
    if y is None:
        raise UserError("BigGAN is class-conditional: give a class (e.g. briard)")
    t = default if truncation is None else float(truncation)
    if not 0 < t <= 1:
        raise UserError(f"BigGAN's truncation must be in (0, 1], not {t}")
    onehot = torch.zeros(len(y), NUM_CLASSES, device=z.device, dtype=z.dtype)
    onehot = onehot.scatter(1, y.long().reshape(-1, 1).to(z.device), 1.0)
    return model(z, onehot, t)
