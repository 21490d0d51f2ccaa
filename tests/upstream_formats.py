"""Test fixtures: weights written in the upstream checkpoint layouts.

Written independently of the loaders (`rosetta_steps.models.checkpoints`), from the
upstream layouts: rosinality's stylegan2-pytorch state dict (saved under `g_ema`) and
NVIDIA's network pickle, whose objects pickle as `torch_utils.persistence` records with their
module source, state dicts of `_parameters` / `_buffers` / `_modules` and attributes. The
pickle is written through stand-in modules `torch_utils.persistence` and `dnnlib.util`, so
it names the same globals a real one does; the module source it carries would create a
marker file if anything executed it. The faces zoo's mini-XCEPTION is written as Keras 2.0.5
saves a model to HDF5 (`keras_hdf5`).
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from rosetta_steps.models.stylegan2 import Generator


def randomize(gen: Generator, seed: int = 0) -> Generator:
    """Give every tensor (noise strengths, biases, w_avg too) a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*gen.named_parameters(), *gen.named_buffers()]:
            if name.endswith("blur"):
                continue
            scale = 0.3 if name.endswith(("bias", "noise_strength", "w_avg")) else 1.0
            t.copy_(torch.randn(t.shape, generator=g) * scale)
    return gen


def _blur(gain: float) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    return k / k.sum() * gain


def rosinality_state_dict(gen: Generator) -> dict[str, torch.Tensor]:
    """The generator in rosinality's Generator(size, style_dim, n_mlp) key layout."""
    sd = {k: v.clone() for k, v in gen.state_dict().items()}
    out = {}
    for i in range(gen.cfg.n_mlp):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.layers.{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.layers.{i}.bias"]
    out["input.input"] = sd["const"]

    def styled(theirs: str, mine: str, upsample: bool) -> None:
        out[f"{theirs}.conv.weight"] = sd[f"{mine}.conv.weight"][None]
        if upsample:
            out[f"{theirs}.conv.blur.kernel"] = _blur(4.0)
        out[f"{theirs}.conv.modulation.weight"] = sd[f"{mine}.conv.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = sd[f"{mine}.conv.affine.bias"]
        out[f"{theirs}.noise.weight"] = sd[f"{mine}.noise_strength"].reshape(1)
        out[f"{theirs}.activate.bias"] = sd[f"{mine}.activate.bias"]

    def rgb(theirs: str, mine: str, upsample: bool) -> None:
        out[f"{theirs}.bias"] = sd[f"{mine}.bias"].reshape(1, 3, 1, 1)
        if upsample:
            out[f"{theirs}.upsample.kernel"] = _blur(4.0)
        out[f"{theirs}.conv.weight"] = sd[f"{mine}.conv.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = sd[f"{mine}.conv.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = sd[f"{mine}.conv.affine.bias"]

    styled("conv1", "conv1", False)
    rgb("to_rgb1", "to_rgb1", False)
    for j in range(len(gen.convs)):
        styled(f"convs.{j}", f"convs.{j}", j % 2 == 0)
    for k in range(len(gen.to_rgbs)):
        rgb(f"to_rgbs.{k}", f"to_rgbs.{k}", True)
    out["noises.noise_0"] = sd["conv1.noise"]
    for j in range(len(gen.convs)):
        out[f"noises.noise_{j + 1}"] = sd[f"convs.{j}.noise"]
    return out


MARKER_SRC = ("import pathlib\n"
              "pathlib.Path({marker!r}).write_text('the pickled module source was executed')\n")


class _Persistent:
    """Pickles as NVIDIA's persistent objects do: _reconstruct_persistent_obj(meta)."""

    reconstruct = None  # set by `nvidia_pickle`
    module_src = ""

    def __init__(self, class_name: str, params=(), buffers=(), modules=(), **attrs):
        self.meta = dict(type="class", version=6, class_name=class_name, state=dict(
            training=False, _parameters=OrderedDict(params), _buffers=OrderedDict(buffers),
            _non_persistent_buffers_set=set(), _modules=OrderedDict(modules),
            _forward_hooks=OrderedDict(), _init_args=(), **attrs))

    def __reduce__(self):
        return (_Persistent.reconstruct, ({**self.meta, "module_src": _Persistent.module_src},))


def _fc(weight: torch.Tensor, bias: torch.Tensor, lr: float, activation: str) -> _Persistent:
    return _Persistent("FullyConnectedLayer", params=[("weight", nn.Parameter(weight)),
                                                      ("bias", nn.Parameter(bias))],
                       activation=activation, bias_gain=lr,
                       weight_gain=np.float64(lr / np.sqrt(weight.shape[1])))


def _nvidia_generator(gen: Generator, easydict: type) -> _Persistent:
    sd = {k: v.clone() for k, v in gen.state_dict().items()}
    cfg = gen.cfg
    f = _blur(1.0)
    fcs = [(f"fc{i}", _fc(sd[f"mapping.layers.{i}.weight"], sd[f"mapping.layers.{i}.bias"],
                          cfg.lr_mlp, "lrelu")) for i in range(cfg.n_mlp)]
    mapping = _Persistent("MappingNetwork", buffers=[("w_avg", sd["mapping.w_avg"])],
                          modules=fcs, z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim,
                          num_layers=cfg.n_mlp, w_avg_beta=0.995)

    def layer(mine: str, res: int, up: int) -> _Persistent:
        return _Persistent(
            "SynthesisLayer",
            params=[("weight", nn.Parameter(sd[f"{mine}.conv.weight"])),
                    ("noise_strength", nn.Parameter(sd[f"{mine}.noise_strength"])),
                    ("bias", nn.Parameter(sd[f"{mine}.activate.bias"]))],
            buffers=[("resample_filter", f), ("noise_const", sd[f"{mine}.noise"][0, 0])],
            modules=[("affine", _fc(sd[f"{mine}.conv.affine.weight"],
                                    sd[f"{mine}.conv.affine.bias"], 1.0, "linear"))],
            resolution=res, up=up, use_noise=True, activation="lrelu",
            conv_clamp=cfg.conv_clamp, padding=1, act_gain=np.sqrt(2))

    def torgb(mine: str) -> _Persistent:
        return _Persistent(
            "ToRGBLayer", params=[("weight", nn.Parameter(sd[f"{mine}.conv.weight"])),
                                  ("bias", nn.Parameter(sd[f"{mine}.bias"]))],
            modules=[("affine", _fc(sd[f"{mine}.conv.affine.weight"],
                                    sd[f"{mine}.conv.affine.bias"], 1.0, "linear"))],
            conv_clamp=cfg.conv_clamp)

    blocks = [("b4", _Persistent("SynthesisBlock", params=[("const", nn.Parameter(sd["const"][0]))],
                                 buffers=[("resample_filter", f)],
                                 modules=[("conv1", layer("conv1", 4, 1)),
                                          ("torgb", torgb("to_rgb1"))],
                                 in_channels=0, resolution=4, architecture="skip"))]
    for k in range(len(gen.to_rgbs)):
        res = 2 ** (k + 3)
        blocks.append((f"b{res}", _Persistent(
            "SynthesisBlock", buffers=[("resample_filter", f)],
            modules=[("conv0", layer(f"convs.{2 * k}", res, 2)),
                     ("conv1", layer(f"convs.{2 * k + 1}", res, 1)),
                     ("torgb", torgb(f"to_rgbs.{k}"))],
            in_channels=cfg.channels(res // 2), resolution=res, architecture="skip")))
    synthesis = _Persistent("SynthesisNetwork", modules=blocks, w_dim=cfg.w_dim,
                            img_resolution=cfg.resolution, img_channels=3)
    kwargs = easydict(mapping_kwargs=easydict(num_layers=cfg.n_mlp),
                      synthesis_kwargs=easydict(channel_base=cfg.channel_base))
    return _Persistent("Generator", modules=[("synthesis", synthesis), ("mapping", mapping)],
                       z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                       img_channels=3, _init_kwargs=kwargs)


def _with_upstream_modules(contents, path: Path, marker: Path) -> None:
    """Pickle `contents(EasyDict)` at `path` through stand-ins of NVIDIA's modules."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # what the real module would do: exec the source
        raise AssertionError("never called while writing")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = easydict
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence",
                                             "dnnlib", "dnnlib.util")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"),
                        "torch_utils.persistence": persistence,
                        "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util})
    try:
        _Persistent.reconstruct = _reconstruct_persistent_obj
        _Persistent.module_src = MARKER_SRC.format(marker=str(marker))
        with open(path, "wb") as f:
            pickle.dump(contents(easydict), f, protocol=4)
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module


def nvidia_pickle(gen: Generator, path: Path, marker: Path) -> None:
    """Write `gen` as an NVIDIA network pickle: {'G', 'D', 'G_ema', ...} at `path`."""
    _with_upstream_modules(lambda easydict: {
        "G": _nvidia_generator(gen, easydict),
        "D": _Persistent("Discriminator", params=[("x", nn.Parameter(torch.zeros(2)))]),
        "G_ema": _nvidia_generator(gen, easydict), "augment_pipe": None,
        "training_set_kwargs": easydict(resolution=gen.cfg.resolution)}, path, marker)


def _stylegan3_network(gen, fc) -> _Persistent:
    """StyleGAN3's G_ema (networks_stylegan3.py; StyleGAN-XL's resetting variant adds the
    class embedding, an nn.Embedding that pickles by class name, and per-class w_avg)."""
    sd = {k: v.clone() for k, v in gen.state_dict().items()}

    def dense(prefix: str, lr: float, activation: str) -> _Persistent:
        return fc(sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], lr, activation)

    syn = gen.synthesis
    inp = syn.input
    layers = []
    for name in syn.layer_names:
        spec = getattr(syn, name).spec
        p = f"synthesis.{name}"
        layers.append((name, _Persistent(
            "SynthesisLayer",
            params=[("weight", nn.Parameter(sd[f"{p}.weight"])),
                    ("bias", nn.Parameter(sd[f"{p}.bias"]))],
            buffers=[("magnitude_ema", sd[f"{p}.magnitude_ema"]),
                     ("up_filter", sd.get(f"{p}.up_filter")),
                     ("down_filter", sd.get(f"{p}.down_filter"))],
            modules=[("affine", dense(f"{p}.affine", 1.0, "linear"))],
            w_dim=gen.mapping.fc0.weight.shape[0], is_torgb=spec.is_torgb,
            is_critically_sampled=spec.is_critically_sampled, use_fp16=False,
            in_channels=spec.in_channels, out_channels=spec.out_channels,
            in_size=np.broadcast_to(np.asarray(spec.in_size), [2]),
            out_size=np.broadcast_to(np.asarray(spec.out_size), [2]),
            in_sampling_rate=spec.in_sampling_rate, out_sampling_rate=spec.out_sampling_rate,
            conv_kernel=1 if spec.is_torgb else spec.conv_kernel, conv_clamp=spec.conv_clamp,
            up_factor=spec.up, down_factor=spec.down,
            padding=[int(v) for v in spec.padding],
            tmp_sampling_rate=spec.tmp_sampling_rate)))
    synthesis = _Persistent(
        "SynthesisNetwork",
        modules=[("input", _Persistent(
            "SynthesisInput", params=[("weight", nn.Parameter(sd["synthesis.input.weight"]))],
            buffers=[("transform", sd["synthesis.input.transform"]),
                     ("freqs", sd["synthesis.input.freqs"]),
                     ("phases", sd["synthesis.input.phases"])],
            modules=[("affine", dense("synthesis.input.affine", 1.0, "linear"))],
            size=np.broadcast_to(np.asarray(inp.size), [2]), sampling_rate=inp.sampling_rate,
            bandwidth=inp.bandwidth)), *layers],
        layer_names=list(syn.layer_names), output_scale=syn.output_scale, margin_size=10,
        num_layers=len(syn.layer_names) - 1)
    mapping_modules = []
    if hasattr(gen.mapping, "embed"):
        embed = nn.Embedding(*sd["mapping.embed.weight"].shape)
        embed.weight.data.copy_(sd["mapping.embed.weight"])
        mapping_modules += [("embed", embed),
                            ("embed_proj", dense("mapping.embed_proj", 1.0, "lrelu"))]
    mapping_modules += [(f"fc{i}", dense(f"mapping.fc{i}", 0.01, "lrelu"))
                        for i in range(gen.mapping.num_layers)]
    mapping = _Persistent("MappingNetwork", buffers=[("w_avg", sd["mapping.w_avg"])],
                          modules=mapping_modules, num_layers=gen.mapping.num_layers,
                          w_avg_beta=0.998)
    return _Persistent("SuperresGenerator" if hasattr(gen.mapping, "embed") else "Generator",
                       modules=[("synthesis", synthesis), ("mapping", mapping)],
                       img_channels=3)


def nvidia_stylegan3_pickle(gen, path: Path, marker: Path) -> None:
    """Write a `stylegan3.Generator` or `styleganxl.GeneratorXL` as the official network
    pickle ({'G', 'D', 'G_ema', ...}) at `path`."""
    _with_upstream_modules(lambda easydict: {
        "G": _stylegan3_network(gen, _fc), "D": _Persistent("Discriminator"),
        "G_ema": _stylegan3_network(gen, _fc), "augment_pipe": None,
        "training_set_kwargs": easydict(use_labels=hasattr(gen.mapping, "embed"))},
        path, marker)


def _keras_bn(bn: nn.BatchNorm2d) -> list[tuple[str, torch.Tensor]]:
    return [("gamma", bn.weight), ("beta", bn.bias), ("moving_mean", bn.running_mean),
            ("moving_variance", bn.running_var)]


def _keras_kernel(weight: torch.Tensor) -> torch.Tensor:
    return weight.permute(2, 3, 1, 0)  # torch (out, in, kh, kw) -> Keras (kh, kw, in, out)


def _keras_separable(sep) -> list[tuple[str, torch.Tensor]]:
    return [("depthwise_kernel", sep.depthwise.weight.permute(2, 3, 0, 1)),  # (kh, kw, in, 1)
            ("pointwise_kernel", _keras_kernel(sep.pointwise.weight))]


def keras_hdf5(model, path: Path) -> None:
    """A MiniXception's weights as Keras 2.0.5 saves the model (no model_config): one group per
    layer in the file's order, `weight_names` attrs, `<layer>/<layer>_1/<weight>:0` datasets.
    Keras numbers layers as they were created: block i's shortcut conv is conv2d_{i+3} and its
    BatchNorm batch_normalization_{3i+3}, ahead of the main branch's 3i+4 and 3i+5."""
    stem = model.stem
    layers = {"conv2d_1": [("kernel", _keras_kernel(stem.conv1.weight))],
              "batch_normalization_1": _keras_bn(stem.bn1),
              "conv2d_2": [("kernel", _keras_kernel(stem.conv2.weight))],
              "batch_normalization_2": _keras_bn(stem.bn2)}
    for i, block in enumerate(model.blocks):
        layers |= {f"separable_conv2d_{2 * i + 1}": _keras_separable(block.sep1),
                   f"batch_normalization_{3 * i + 4}": _keras_bn(block.bn1),
                   f"separable_conv2d_{2 * i + 2}": _keras_separable(block.sep2),
                   f"batch_normalization_{3 * i + 5}": _keras_bn(block.bn2),
                   f"conv2d_{i + 3}": [("kernel", _keras_kernel(block.skip.weight))],
                   f"batch_normalization_{3 * i + 3}": _keras_bn(block.skip_bn)}
    layers["conv2d_7"] = [("kernel", _keras_kernel(model.head.weight)),
                          ("bias", model.head.bias)]
    with h5py.File(path, "w") as f:
        for obj in (f, f.create_group("model_weights")):
            obj.attrs["keras_version"], obj.attrs["backend"] = "2.0.5", "tensorflow"
        root = f["model_weights"]
        root.attrs["layer_names"] = np.array([name.encode() for name in layers])
        for layer, weights in layers.items():
            group = root.create_group(layer)
            names = [f"{layer}_1/{weight}:0" for weight, _ in weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, (_, tensor) in zip(names, weights, strict=True):
                group.create_dataset(name, data=tensor.detach().cpu().numpy().astype(np.float32))
