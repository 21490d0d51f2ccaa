"""StyleGAN-XL (Sauer et al., "StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets",
SIGGRAPH 2022), the class-conditional ImageNet generator, written for this project on the
StyleGAN3 layers of `stylegan3`.

The architecture of the paper: StyleGAN3-T's synthesis network (3 x 3 convolutions, separable
filters) grown progressively. A 16 x 16 stem of 11 layers (10 and ToRGB) is trained first;
each superresolution stage then cuts off the stem's critically sampled layers (the last two
and ToRGB) and appends 7 layers and a ToRGB that double the resolution, their cutoffs and
stopbands continuing geometrically from the last kept layer to the new Nyquist limit (Sec. 3.3
of the paper). The settings are the authors' README commands, which they state are the
standard ImageNet ones (`--cfg stylegan3-t --syn_layers 10 --head_layers 7`, default
`--cbase 32768 --cmax 512`, doubled by their train.py for StyleGAN-XL): channels
min(65536 / (2 cutoff), 1024), so the stem's layers are `L0_36_1024` .. `L10_16_3` as users
of the released code report, and ImageNet 256 (the stem and four stages) has 30 layers and
ToRGB, 32 w inputs. The file's settings are not published apart from these; the loader checks
every layer name and tensor shape against this plan and names the first that differs.

The mapping network takes z of 64 dimensions and the class: the class picks a row of a
fixed ImageNet embedding (1000 x 320, the authors' `tf_efficientnet_lite0.pkl`), projected to 64
dimensions by a leaky-ReLU layer, normalised and concatenated with the normalised z, then two
leaky-ReLU layers give w. The moving average of w is kept per class, so truncation pulls w
towards its class's centre: w_avg[class] + psi (w - w_avg[class]) (the original's uni-modal
truncation; its multi-modal k-means centroids are a separate download and not used).

Hooked layers, as the original Rosetta code picks them for StyleGAN-XL (every module with
"synthesis" in its name except the affines): the synthesis network itself (the image times
its output scale), `synthesis.input` and every `synthesis.L{i}_{size}_{channels}` layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .stylegan3 import (
    FullyConnected,
    LayerPlan,
    StyleGAN3Config,
    Synthesis,
    chain,
    layer_plan,
    normalize_2nd_moment,
)


def _imagenet_stem() -> StyleGAN3Config:
    # StyleGAN-XL's train.py: --cfg stylegan3-t, z of 64, 2 mapping layers, channel base and
    # max doubled from their defaults, --syn_layers 10 in the authors' commands
    return StyleGAN3Config(resolution=16, z_dim=64, num_layers=10, channel_base=65536,
                           channel_max=1024, conv_kernel=3, radial=False)


@dataclass(frozen=True)
class StyleGANXLConfig:
    """A stem and its superresolution stages (each x2), with the class embedding's shape."""

    resolution: int = 256
    stem: StyleGAN3Config = field(default_factory=_imagenet_stem)
    head_layers: int = 7
    num_classes: int = 1000
    embed_dim: int = 320

    def __post_init__(self) -> None:
        ratio = self.resolution // self.stem.resolution
        if ratio < 1 or ratio & (ratio - 1) or ratio * self.stem.resolution != self.resolution:
            raise ValueError(f"StyleGAN-XL resolution {self.resolution} is not the stem's "
                             f"{self.stem.resolution} times a power of two")


def layer_plan_xl(cfg: StyleGANXLConfig) -> list[LayerPlan]:
    """The stem's layers, then per stage: drop the critically sampled ones and append the
    stage's head (named on from the number of layers kept, plus one for the input)."""
    stem = cfg.stem
    layers = layer_plan(stem)
    res = stem.resolution
    while res < cfg.resolution:
        while layers[-1].is_critically_sampled:
            layers.pop()
        res *= 2
        last = layers[-1]
        n, critical = cfg.head_layers, stem.num_critical
        last_cutoff = res / 2
        last_stopband = last_cutoff * stem.last_stopband_rel
        first_stopband = last.out_half_width + last.out_cutoff
        exponents = np.minimum(np.arange(n + 1) / (n - critical), 1)
        cutoffs = last.out_cutoff * (last_cutoff / last.out_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
        rates[0] = last.out_sampling_rate
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + stem.margin * 2
        sizes[-2:] = res
        channels = np.rint(np.minimum((stem.channel_base / 2) / cutoffs, stem.channel_max))
        channels[0], channels[-1] = last.out_channels, 3
        layers += chain(cutoffs, rates, half_widths, sizes, channels, len(layers) + 1,
                        critical, conv_kernel=3, radial=False)
    return layers


class ClassMapping(nn.Module):
    """(z, class) -> w through the class embedding; w averages kept per class."""

    def __init__(self, cfg: StyleGANXLConfig):
        super().__init__()
        z_dim, w_dim = cfg.stem.z_dim, cfg.stem.w_dim
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.embed_proj = FullyConnected(cfg.embed_dim, z_dim, activate=True)
        dims = [2 * z_dim] + [w_dim] * cfg.stem.mapping_layers
        for i in range(cfg.stem.mapping_layers):
            self.add_module(f"fc{i}", FullyConnected(dims[i], dims[i + 1], 0.01, activate=True))
        self.num_layers = cfg.stem.mapping_layers
        self.register_buffer("w_avg", torch.zeros(cfg.num_classes, w_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = normalize_2nd_moment(self.embed_proj(self.embed(y.long())))
        x = torch.cat([normalize_2nd_moment(z.float()), c], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class GeneratorXL(nn.Module):
    """(z [batch, 64], class indices [batch]) -> image [batch, 3, resolution, resolution]."""

    def __init__(self, cfg: StyleGANXLConfig):
        super().__init__()
        self.cfg = cfg
        self.mapping = ClassMapping(cfg)
        plan = layer_plan_xl(cfg)
        self.synthesis = Synthesis(cfg.stem.w_dim, plan[0], plan, cfg.stem.output_scale)

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0
                ) -> torch.Tensor:
        w = self.mapping(z, y)
        if truncation != 1:
            w = self.mapping.w_avg[y.long()].to(w.dtype).lerp(w, truncation)
        return self.synthesis(w)


def layer_names(cfg: StyleGANXLConfig) -> tuple[str, ...]:
    """The hooked modules: the synthesis network, its Fourier input and every layer."""
    return ("synthesis", "synthesis.input",
            *(f"synthesis.{spec.name}" for spec in layer_plan_xl(cfg)))


def generate(model: GeneratorXL, z: torch.Tensor, y: torch.Tensor | None,
             truncation: float | None, default_psi: float = 0.7) -> torch.Tensor:
    """The registry's `generate`: classes `y`, truncation psi towards each class's mean w
    (default 0.7), images clamped to [-1, 1]."""
    from ..core.cli import UserError
    if y is None:
        raise UserError("StyleGAN-XL is class-conditional: give a class (e.g. briard)")
    psi = default_psi if truncation is None else float(truncation)
    return model(z, y.to(z.device), psi).clamp(-1, 1)
