"""Capture the activation maps of named layers with forward hooks (the units of Sec. 3).

The paper matches post-activation outputs (after ReLU/GELU). They are read with
`register_forward_hook` on the modules that produce them, never by editing model code, so any
torch module can join the zoo by naming its layers. Outputs come back as maps
[batch, channels, h, w]:

- a ViT's token sequence [batch, tokens, channels] loses its prefix tokens (class and register
  tokens, timm's `num_prefix_tokens`) and the patch tokens become a square map;
- a layer named in `channels_last` (ConvNeXt's MLP runs on [batch, h, w, channels]) is
  permuted to [batch, channels, h, w];
- a tensor that a later in-place operation changed would silently give wrong activations, so
  each output's version counter is checked when the forward pass ends;
- with `stop=True` the forward pass is cut short once every hooked layer has fired, so a
  discriminative model does not run its head.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


class _AllCaptured(Exception):
    """Raised from the last hook to end a forward pass early."""


def tokens_to_map(tokens: torch.Tensor, prefix: int) -> torch.Tensor:
    """[batch, prefix + s*s, channels] tokens -> [batch, channels, s, s] patch map."""
    patches = tokens[:, prefix:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens (after dropping {prefix} prefix "
                         "tokens) do not form a square grid")
    return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)


def _version(t: torch.Tensor) -> int | None:
    try:
        return t._version
    except RuntimeError:  # inference tensors carry no version counter
        return None


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], stop: bool = False,
            channels_last: Sequence[str] = ()) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of `layers` (module names) during forward passes inside the block.

    Yields a dict filled with maps [batch, channels, h, w] in the order of `layers`, whatever
    order the modules fire in. With `stop=True` the forward call raises internally after the
    last layer and the block ends there, so write it as the block's last statement.
    """
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise KeyError(f"{type(model).__name__} has no module named {missing[0]!r}")
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    raw: dict[str, torch.Tensor] = {}
    versions: dict[str, int | None] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            raw[name] = out
            versions[name] = _version(out)
            if stop and len(raw) == len(layers):
                raise _AllCaptured
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    maps: dict[str, torch.Tensor] = {}
    try:
        yield maps
    except _AllCaptured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    for name in layers:
        if name not in raw:
            raise RuntimeError(f"layer {name!r} did not run in the forward pass")
        out = raw[name]
        if versions[name] is not None and _version(out) != versions[name]:
            raise RuntimeError(f"the output of layer {name!r} was modified in place after it "
                               "was hooked; hook a later module or disable inplace there")
        if out.ndim == 3:
            out = tokens_to_map(out, prefix)
        elif name in channels_last:
            out = out.permute(0, 3, 1, 2)
        if out.ndim != 4 or out.shape[-1] != out.shape[-2]:
            raise RuntimeError(f"layer {name!r} gives shape {tuple(out.shape)}, not square "
                               "maps [batch, channels, h, w]")
        maps[name] = out
