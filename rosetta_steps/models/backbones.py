"""The paper's discriminative models: timm and open_clip architectures and their weight files.

- ResNet-50s (supervised, DINO) are timm's `resnet50` (torchvision's layout: `conv1`, `bn1`,
  `layer1..4`, `fc`), CLIP's is open_clip's `ModifiedResNet` (the image tower alone: its
  3-conv stem, `layer1..4`, attention pooling); ViTs are timm's `VisionTransformer`.
- Weight files are state dicts (safetensors, or torch files read with `weights_only=True`):
  timm's Hugging Face files, DINO's published .pth, MAE's (`{"model": ...}`), open_clip's
  full CLIP state dict (only `visual.*` is kept). A wrapper key (`model`, `state_dict`) and
  a `module.` prefix are removed; a classifier head (`fc.*`, `head.*`) that the architecture
  does not have is dropped; everything else must match exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
VIT_LAYERS = tuple(f"blocks.{i}.mlp.act" for i in range(12))


def timm_model(arch: str, **kwargs) -> nn.Module:
    """A timm architecture with random weights (never downloads)."""
    import timm
    return timm.create_model(arch, pretrained=False, **kwargs)


def clip_rn50() -> nn.Module:
    """CLIP's ResNet-50 image tower (open_clip's ModifiedResNet, as in its RN50 config)."""
    from open_clip.modified_resnet import ModifiedResNet
    return ModifiedResNet(layers=[3, 4, 6, 3], output_dim=1024, heads=32, image_size=224,
                          width=64)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch weights file, unwrapped and without `module.`."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError("not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()
            if isinstance(v, torch.Tensor)}


def _load(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = model.state_dict()
    for head in ("fc.", "head."):
        if not any(k.startswith(head) for k in own):
            state = {k: v for k, v in state.items() if not k.startswith(head)}
    model.load_state_dict(state, strict=True)


def load_timm_weights(model: nn.Module, path: Path) -> None:
    """Load a timm-layout state dict (timm's files, DINO's and MAE's published .pth)."""
    _load(model, read_state_dict(path))


def load_clip_visual(model: nn.Module, path: Path) -> None:
    """Load the image tower from an open_clip (or bare image-tower) state dict."""
    state = read_state_dict(path)
    if any(k.startswith("visual.") for k in state):
        state = {k.removeprefix("visual."): v for k, v in state.items()
                 if k.startswith("visual.")}
    _load(model, state)
