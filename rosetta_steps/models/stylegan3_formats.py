"""Load NVIDIA's StyleGAN3 and StyleGAN-XL network pickles into this project's generators.

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

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .unpickle import PersistentObject, load_network_pickle


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
