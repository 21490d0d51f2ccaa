"""Any timm or open_clip image model by name: `timm:ARCH[.TAG]`, `open_clip:ARCH/TAG`.

E.g. `timm:convnext_tiny.fb_in1k`, `timm:vit_small_patch16_224.augreg_in21k`,
`open_clip:RN50/openai`, `open_clip:ViT-B-32/laion2b_s34b_b79k`, usable wherever a model name
is (params.yaml, `--disc`). Preprocessing (size, resize mode, mean and std) and the weights'
source come from the library's pretrained config; weights are resolved like the paper's
models (cache, then a download, or an explicit file).

Which units: the post-activation outputs, picked by one rule. The model's stages are the
modules timm lists in `feature_info` (what `features_only` returns: ResNet stages, ViT
blocks, ConvNeXt stages, ...); for open_clip's image towers, `layer1..4` (ResNets) or each
`transformer.resblocks.i` (ViTs). A stage whose blocks have MLPs (an activation module inside
a module named `mlp`: ViT, DINOv2/v3 with registers, SigLIP, EVA-02's SwiGLU, ConvNeXt) is
hooked at every block's MLP activation, as the paper and its 2026 follow-up hook MLP neurons.
Any other stage is hooked at its last activation module (ReLU, GELU, SiLU, ... in
registration order), which for a timm ResNet is the stage's output. Only outputs that are maps
[batch, C, s, s], channels-last maps [batch, s, s, C] (ConvNeXt's MLP, permuted when captured)
or ViT tokens count; a stage without one is hooked at its own output. Prefix tokens (class
and register tokens, timm's `num_prefix_tokens`) are dropped from the maps.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from ..core.cli import UserError
from .backbones import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_clip_visual,
    load_timm_weights,
    timm_model,
)
from .registry import DISCRIMINATIVE, ModelSpec, Preprocess, register_resolver
from .weights import HubFile, Source, UrlFile

_ACTIVATIONS = {"relu", "relu6", "gelu", "gelutanh", "quickgelu", "silu", "swish", "hardswish",
                "mish", "leakyrelu", "elu", "celu", "selu", "prelu", "hardsigmoid"}


def _is_activation(module: nn.Module) -> bool:
    return not list(module.children()) and type(module).__name__.lower() in _ACTIVATIONS


def activation_modules(model: nn.Module) -> list[str]:
    """The names of a model's activation modules (ReLU, GELU, ...), in registration order."""
    return [name for name, m in model.named_modules() if name and _is_activation(m)]


def _layout(shape: torch.Size, prefix: int) -> str | None:
    """"map" ([batch, C, s, s]), "channels_last" ([batch, s, s, C]), "tokens" ([batch,
    prefix + s*s, C]) or None for an output that is none of them."""
    if len(shape) == 4 and shape[-1] == shape[-2]:
        return "map"
    if len(shape) == 4 and shape[1] == shape[2]:
        return "channels_last"
    if len(shape) == 3 and shape[1] > prefix:
        side = math.isqrt(shape[1] - prefix)
        return "tokens" if side * side == shape[1] - prefix else None
    return None


def _in_mlp(name: str) -> bool:
    return name.rpartition(".")[0].rpartition(".")[2] == "mlp"


def post_activation_layers(build, stages: list[str], size: int
                           ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Apply the module docstring's rule with one shape-only (meta device) forward pass;
    returns (layers, the layers among them whose maps are channels-last)."""
    with torch.device("meta"):
        model = build().eval()
        modules = dict(model.named_modules())
        prefix = int(getattr(model, "num_prefix_tokens", 0))
        candidates = {s: [f"{s}.{n}" for n, m in modules[s].named_modules() if n and
                          _is_activation(m)] for s in stages}
        shapes: dict[str, torch.Size] = {}
        handles = [modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(
                name, (out[0] if isinstance(out, (tuple, list)) else out).shape))
            for name in {*stages, *(c for cs in candidates.values() for c in cs)}]
        try:
            model(torch.zeros(1, 3, size, size))
        finally:
            for handle in handles:
                handle.remove()
    layers: list[str] = []
    for stage in stages:
        valid = [c for c in candidates[stage] if c in shapes and _layout(shapes[c], prefix)]
        mlp = [c for c in valid if _in_mlp(c)]
        if mlp:
            layers += mlp
        elif valid:
            layers.append(valid[-1])
        elif stage in shapes and _layout(shapes[stage], prefix) == "map":
            layers.append(stage)
    if not layers:
        raise UserError("no layer of this model gives square activation maps")
    channels_last = tuple(n for n in layers if _layout(shapes[n], prefix) == "channels_last")
    return tuple(layers), channels_last


def timm_spec(name: str) -> ModelSpec:
    """`timm:ARCH[.TAG]`: a timm model, units by the module docstring's rule."""
    import timm
    arch = name.removeprefix("timm:")
    try:
        with torch.device("meta"):
            probe = timm.create_model(arch, pretrained=False)
    except (RuntimeError, ValueError) as err:  # timm: unknown model or tag
        raise UserError(f"{name}: {str(err).strip().splitlines()[0]}") from None
    cfg = probe.pretrained_cfg
    stages = [info["module"] for info in probe.feature_info]
    build = partial(timm_model, arch)
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    source = None
    if cfg.get("hf_hub_id"):
        source = Source(((HubFile(cfg["hf_hub_id"], ("model.safetensors", "pytorch_model.bin")),),))
    elif cfg.get("url"):
        source = Source(((UrlFile(cfg["url"].rsplit("/", 1)[-1], cfg["url"]),),))
    layers, channels_last = post_activation_layers(build, stages, size)
    return ModelSpec(
        name=name, kind=DISCRIMINATIVE, objective=f"timm {arch}", build=build,
        layers=layers, channels_last=channels_last,
        preprocess=Preprocess(size=size, resize=cfg.get("interpolation") or "bicubic",
                              mean=tuple(cfg.get("mean") or IMAGENET_MEAN),
                              std=tuple(cfg.get("std") or IMAGENET_STD)),
        load_weights=load_timm_weights, source=source, tags=("timm",))


def _open_clip_visual(arch: str, quick_gelu: bool) -> nn.Module:
    import open_clip
    visual = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu,
                                    device=torch.get_default_device()).visual
    if hasattr(visual, "transformer"):
        visual.num_prefix_tokens = 1  # the class token, dropped from the maps
    return visual


def open_clip_spec(name: str) -> ModelSpec:
    """`open_clip:ARCH/TAG`: an open_clip image tower, units by the module docstring's rule."""
    import open_clip
    arch, _, tag = name.removeprefix("open_clip:").partition("/")
    cfg = open_clip.pretrained.get_pretrained_cfg(arch, tag) if tag else {}
    if arch not in open_clip.list_models() or (tag and not cfg):
        raise UserError(f"{name}: unknown open_clip model or tag (see open_clip.list_pretrained())")
    build = partial(_open_clip_visual, arch, bool(cfg.get("quick_gelu", False)))
    with torch.device("meta"):
        visual = build()
    if hasattr(visual, "transformer"):
        stages = [f"transformer.resblocks.{i}" for i in range(len(visual.transformer.resblocks))]
    elif all(hasattr(visual, s) for s in ("layer1", "layer4")):
        stages = ["layer1", "layer2", "layer3", "layer4"]
    else:
        raise UserError(f"{name}: only open_clip's ResNet and ViT image towers are supported")
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    source = None
    if cfg.get("hf_hub"):  # "org/repo/" (default file names) or "org/repo/file"
        parts = cfg["hf_hub"].split("/")
        repo_id, file = "/".join(parts[:2]), "/".join(parts[2:])
        files = (file,) if file else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        source = Source(((HubFile(repo_id, files),),))
    layers, channels_last = post_activation_layers(build, stages, int(size))
    return ModelSpec(
        name=name, kind=DISCRIMINATIVE, objective=f"open_clip {arch} ({tag or 'untrained'})",
        build=build, layers=layers, channels_last=channels_last,
        preprocess=Preprocess(size=int(size), resize="bicubic",
                              mean=tuple(cfg.get("mean") or CLIP_MEAN),
                              std=tuple(cfg.get("std") or CLIP_STD)),
        load_weights=load_clip_visual, source=source, tags=("open_clip",))


register_resolver("timm:", timm_spec)
register_resolver("open_clip:", open_clip_spec)
