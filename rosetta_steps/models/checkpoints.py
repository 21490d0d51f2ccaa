"""Load published StyleGAN checkpoints into this project's generators.

StyleGAN2 (`load_checkpoint`, `load_matching`) into `stylegan2.Generator`.
Two layouts, told apart by the file's content, not its name:

- the widely used converted PyTorch checkpoints (rosinality's stylegan2-pytorch: a
  `torch.save`d dict with the generator's state dict under `g_ema`, keys `style.{i}`,
  `input.input`, `conv1`, `to_rgb1`, `convs.{i}`, `to_rgbs.{i}`, `noises.noise_{i}`, and for
  conversions of NVIDIA's networks `latent_avg`), read with `torch.load(weights_only=True)`;
- NVIDIA's network pickles (stylegan2-ada-pytorch / stylegan3 code: a dict with the generator
  under `G_ema`, `mapping.fc{i}`, `mapping.w_avg`, `synthesis.b{res}.{const,conv0,conv1,torgb}`),
  read with the restricted unpickler of `unpickle`, which runs none of the pickled code.

The generator's shape (resolution, channels, mapping depth) comes from the tensors' shapes;
missing noise maps (older converted checkpoints) are drawn from a fixed seed and a missing w
average is estimated from 4096 fixed-seed latents, so a checkpoint always gives one generator.

StyleGAN3 and StyleGAN-XL (`load_generator`).
The pickles (`stylegan3-r-ffhqu-1024x1024.pkl`, `stylegan3-r-afhqv2-512x512.pkl`,
StyleGAN-XL's `imagenet256.pkl`) hold the generator under `G_ema` as
`torch_utils.persistence` objects; they are read with the restricted unpickler of
`unpickle`, which runs none of the pickled code. The generator's tensors are named as this
project's modules are (`mapping.fc{i}`, `mapping.w_avg`, `synthesis.input.*`,
`synthesis.L{i}_{size}_{channels}.*`; StyleGAN-XL adds `mapping.embed` and
`mapping.embed_proj`), and each synthesis layer's object carries its hyper-parameters
(up/down factors, padding, kernel, clamp). The registry's model is the architecture the file
must hold: the same layer names in the same order, the same tensor names and shapes and the
same per-layer hyper-parameters; anything else fails with one line saying what differs.
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .stylegan2 import Generator, StyleGAN2Config
from .unpickle import PersistentObject, load_network_pickle

_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _config(z_dim: int, w_dim: int, n_mlp: int, channels: dict[int, int], lr_mlp: float,
            conv_clamp: float | None) -> StyleGAN2Config:
    """The config whose channel formula gives `channels` ({resolution: channels})."""
    res = max(channels)
    cfg = StyleGAN2Config(resolution=res, z_dim=z_dim, w_dim=w_dim, n_mlp=n_mlp,
                          channel_base=channels[res] * res, channel_max=channels[4],
                          lr_mlp=lr_mlp, conv_clamp=conv_clamp)
    wrong = {r: c for r, c in channels.items() if cfg.channels(r) != c}
    if sorted(channels) != [2 ** i for i in range(2, cfg.log2 + 1)] or wrong:
        raise ValueError(f"unsupported StyleGAN2 channel layout {channels}")
    return cfg


def _build(cfg: StyleGAN2Config, state: dict[str, torch.Tensor], has_w_avg: bool) -> Generator:
    """A generator with `state` (this module's keys); fills missing noise maps from seed 0."""
    with torch.device("meta"):
        gen = Generator(cfg)
    names = dict(gen.state_dict())
    seeded = torch.Generator().manual_seed(0)
    for key in names:  # noise maps and w_avg may be absent upstream
        if key not in state and key.endswith(".noise"):
            state[key] = torch.randn(names[key].shape, generator=seeded)
        if key == "mapping.w_avg" and not has_w_avg:
            state[key] = torch.zeros(cfg.w_dim)
    for key, value in names.items():
        if key in state and tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"{key}: shape {tuple(state[key].shape)} in the checkpoint, "
                             f"{tuple(value.shape)} expected")
    gen = Generator(cfg)
    gen.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    if not has_w_avg:
        gen.estimate_w_avg()
    return gen.eval()


def from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None
                    ) -> Generator:
    """A generator from a rosinality-layout state dict (the `g_ema` of a converted .pt)."""
    n_mlp = sum(1 for k in sd if re.fullmatch(r"style\.\d+\.weight", k))
    n_convs = sum(1 for k in sd if re.fullmatch(r"convs\.\d+\.conv\.weight", k))
    if n_mlp == 0 or "input.input" not in sd or n_convs % 2:
        raise ValueError("not a StyleGAN2 state dict in rosinality's layout (style.*, "
                         "input.input, convs.*)")
    channels = {4: sd["input.input"].shape[1]}
    for k in range(n_convs // 2):
        channels[2 ** (k + 3)] = sd[f"convs.{2 * k}.conv.weight"].shape[1]
    w_dim, z_dim = sd["style.1.weight"].shape
    cfg = _config(z_dim, w_dim, n_mlp, channels, 0.01, None)
    state = {"const": sd["input.input"]}
    for i in range(n_mlp):
        for p in ("weight", "bias"):
            state[f"mapping.layers.{i}.{p}"] = sd[f"style.{i + 1}.{p}"]

    def styled(mine: str, theirs: str, noise: str) -> None:
        state[f"{mine}.conv.weight"] = sd[f"{theirs}.conv.weight"][0]
        state[f"{mine}.conv.affine.weight"] = sd[f"{theirs}.conv.modulation.weight"]
        state[f"{mine}.conv.affine.bias"] = sd[f"{theirs}.conv.modulation.bias"]
        state[f"{mine}.noise_strength"] = sd[f"{theirs}.noise.weight"].reshape(())
        state[f"{mine}.activate.bias"] = sd[f"{theirs}.activate.bias"].reshape(-1)
        if noise in sd:
            state[f"{mine}.noise"] = sd[noise].reshape(1, 1, *sd[noise].shape[-2:])

    def rgb(mine: str, theirs: str) -> None:
        state[f"{mine}.conv.weight"] = sd[f"{theirs}.conv.weight"][0]
        state[f"{mine}.conv.affine.weight"] = sd[f"{theirs}.conv.modulation.weight"]
        state[f"{mine}.conv.affine.bias"] = sd[f"{theirs}.conv.modulation.bias"]
        state[f"{mine}.bias"] = sd[f"{theirs}.bias"].reshape(-1)

    styled("conv1", "conv1", "noises.noise_0")
    rgb("to_rgb1", "to_rgb1")
    for j in range(n_convs):
        styled(f"convs.{j}", f"convs.{j}", f"noises.noise_{j + 1}")
    for k in range(n_convs // 2):
        rgb(f"to_rgbs.{k}", f"to_rgbs.{k}")
    if latent_avg is not None:
        state["mapping.w_avg"] = latent_avg.reshape(-1)
    return _build(cfg, state, has_w_avg=latent_avg is not None)


def from_nvidia(g: PersistentObject) -> Generator:
    """A generator from the `G_ema` object of one of NVIDIA's network pickles."""
    t = g.tensors()
    if any(k.startswith("mapping.embed.") for k in t) or int(g.state.get("c_dim", 0) or 0):
        raise ValueError("class-conditional StyleGAN2 pickles are not supported")
    res_list = sorted({int(m.group(1)) for k in t
                       if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k))})
    n_mlp = sum(1 for k in t if re.fullmatch(r"mapping\.fc\d+\.weight", k))
    if not res_list or n_mlp == 0 or "synthesis.b4.const" not in t:
        raise ValueError(f"G_ema ({g.class_name}) is not a StyleGAN2 generator (mapping.fc*, "
                         "synthesis.b4.const)")
    missing_rgb = [r for r in res_list if f"synthesis.b{r}.torgb.weight" not in t]
    if missing_rgb:
        raise ValueError("only the 'skip' synthesis architecture (StyleGAN2 configs E/F) is "
                         f"supported; block {missing_rgb[0]} has no to-RGB layer")
    channels = {r: t[f"synthesis.b{r}.conv1.weight"].shape[0] for r in res_list}
    fc0 = g.child("mapping.fc0")
    lr_mlp = float(fc0.state.get("bias_gain", 0.01)) if fc0 is not None else 0.01
    layer = g.child("synthesis.b4.conv1")
    clamp = layer.state.get("conv_clamp") if layer is not None else None
    w_dim, z_dim = t["mapping.fc0.weight"].shape[0], t["mapping.fc0.weight"].shape[1]
    cfg = _config(z_dim, w_dim, n_mlp, channels, lr_mlp,
                  None if clamp is None else float(clamp))
    state = {"const": t["synthesis.b4.const"][None]}
    for i in range(n_mlp):
        for p in ("weight", "bias"):
            state[f"mapping.layers.{i}.{p}"] = t[f"mapping.fc{i}.{p}"]
    if "mapping.w_avg" in t:
        state["mapping.w_avg"] = t["mapping.w_avg"]

    def styled(mine: str, theirs: str) -> None:
        state[f"{mine}.conv.weight"] = t[f"{theirs}.weight"]
        state[f"{mine}.conv.affine.weight"] = t[f"{theirs}.affine.weight"]
        state[f"{mine}.conv.affine.bias"] = t[f"{theirs}.affine.bias"]
        state[f"{mine}.activate.bias"] = t[f"{theirs}.bias"]
        if f"{theirs}.noise_const" in t:
            state[f"{mine}.noise_strength"] = t[f"{theirs}.noise_strength"].reshape(())
            state[f"{mine}.noise"] = t[f"{theirs}.noise_const"][None, None]
        else:  # use_noise=False
            state[f"{mine}.noise_strength"] = torch.zeros(())

    def rgb(mine: str, theirs: str) -> None:
        state[f"{mine}.conv.weight"] = t[f"{theirs}.weight"]
        state[f"{mine}.conv.affine.weight"] = t[f"{theirs}.affine.weight"]
        state[f"{mine}.conv.affine.bias"] = t[f"{theirs}.affine.bias"]
        state[f"{mine}.bias"] = t[f"{theirs}.bias"]

    styled("conv1", "synthesis.b4.conv1")
    rgb("to_rgb1", "synthesis.b4.torgb")
    for k, res in enumerate(res_list[1:]):
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
        rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
    return _build(cfg, state, has_w_avg="mapping.w_avg" in state)


def is_torch_file(path: Path) -> bool:
    """A `torch.save` file (zip or legacy) rather than a plain pickle."""
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_TORCH_MAGIC))
    return zipfile.is_zipfile(path) or head == _LEGACY_TORCH_MAGIC


def load_checkpoint(path: str | Path) -> Generator:
    """A StyleGAN2 generator from a converted .pt (g_ema) or an NVIDIA pickle (G_ema)."""
    path = Path(path)
    if is_torch_file(path):
        with torch.serialization.safe_globals([argparse.Namespace]):  # training args
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict):
            raise ValueError("not a StyleGAN2 checkpoint (expected a dict with 'g_ema')")
        if "g_ema" in ckpt:
            return from_rosinality(ckpt["g_ema"], ckpt.get("latent_avg"))
        return from_rosinality(ckpt)  # a bare state dict
    data = load_network_pickle(path)
    g = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(g, PersistentObject):
        raise ValueError("not an NVIDIA network pickle (no 'G_ema' network in it)")
    return from_nvidia(g)


def load_matching(cfg: StyleGAN2Config, _model: Generator, path: Path) -> Generator:
    """The registry's loader: the checkpoint's generator, which must have `cfg`'s shape."""
    gen = load_checkpoint(path)
    shape = ("resolution", "z_dim", "w_dim", "n_mlp", "channel_base", "channel_max")
    found, expected = ([getattr(c, k) for k in shape] for c in (gen.cfg, cfg))
    if found != expected:
        raise ValueError(f"the checkpoint's generator ({gen.cfg.resolution} px, channels "
                         f"{[gen.cfg.channels(2 ** i) for i in range(2, gen.cfg.log2 + 1)]}) "
                         f"is not this model's ({cfg.resolution} px, config F)")
    return gen


# StyleGAN3 and StyleGAN-XL network pickles
def _number(value) -> float | None:
    if value is None:
        return None
    return float(np.asarray(value).reshape(-1)[0])


def _check_layer(name: str, theirs: PersistentObject, mine: nn.Module) -> None:
    """The hyper-parameters that are not tensors: they must be this model's."""
    spec, st = mine.spec, theirs.state
    found = {"up_factor": _number(st.get("up_factor")),
             "down_factor": _number(st.get("down_factor")),
             "conv_kernel": _number(st.get("conv_kernel")),
             "is_torgb": bool(st.get("is_torgb")),
             "conv_clamp": _number(st.get("conv_clamp")),
             "padding": [int(p) for p in st.get("padding") or ()]}
    expected = {"up_factor": spec.up, "down_factor": spec.down, "conv_kernel": spec.kernel,
                "is_torgb": spec.is_torgb, "conv_clamp": spec.conv_clamp,
                "padding": list(spec.padding)}
    for key, value in expected.items():
        if found[key] != value:
            raise ValueError(f"synthesis.{name}: {key} {found[key]} in the checkpoint, "
                             f"{value} in this model")


def load_generator(model: nn.Module, path: Path) -> nn.Module:
    """The registry's loader: the pickle's G_ema weights in `model` (a `stylegan3.Generator`
    or `styleganxl.GeneratorXL`), after checking it holds that architecture."""
    data = load_network_pickle(path)
    g = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(g, PersistentObject):
        raise ValueError("not an NVIDIA network pickle (no 'G_ema' network in it)")
    synthesis = g.child("synthesis")
    names = list((synthesis.state.get("layer_names") or []) if synthesis is not None else [])
    if synthesis is None or g.child("synthesis.input") is None or not names:
        raise ValueError(f"G_ema ({g.class_name}) is not a StyleGAN3 generator "
                         "(synthesis.input, synthesis.layer_names)")
    expected_names = list(model.synthesis.layer_names)
    if names != expected_names:
        raise ValueError(f"the checkpoint's synthesis layers ({len(names)}: {names[0]} .. "
                         f"{names[-1]}) are not this model's ({len(expected_names)}: "
                         f"{expected_names[0]} .. {expected_names[-1]})")
    for name in names:
        layer = g.child(f"synthesis.{name}")
        if layer is None:
            raise ValueError(f"synthesis.{name} is listed but missing from the checkpoint")
        _check_layer(name, layer, getattr(model.synthesis, name))
    tensors = {k: v.float() for k, v in g.tensors().items()}
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in tensors]
    unknown = [k for k in tensors if k not in wanted]
    if missing or unknown:
        what = (f"{len(missing)} tensors missing, e.g. {missing[0]}" if missing
                else f"{len(unknown)} unknown tensors, e.g. {unknown[0]}")
        raise ValueError(f"G_ema ({g.class_name}) does not have this model's layout: {what}")
    for key, value in wanted.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise ValueError(f"{key}: shape {tuple(tensors[key].shape)} in the checkpoint, "
                             f"{tuple(value.shape)} expected")
    scale = _number(synthesis.state.get("output_scale"))
    if scale != model.synthesis.output_scale:
        raise ValueError(f"synthesis output scale {scale} in the checkpoint, "
                         f"{model.synthesis.output_scale} in this model")
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)
    return model.eval()
