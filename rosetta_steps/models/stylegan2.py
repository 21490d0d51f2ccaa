"""A StyleGAN2 generator (Karras et al., CVPR 2020, configs E/F), written for this project.

The architecture of the paper and its published configurations: a mapping network (8
equalised-learning-rate layers, leaky ReLU, learning rate x0.01) from z to w, then a synthesis
network from a learned 4 x 4 constant. At every resolution 8, 16, ... two 3 x 3 modulated
convolutions (styles from w, weight demodulation), the first upsampling by 2 (transposed
convolution, then the [1, 3, 3, 1] blur); each adds its noise map times a learned strength,
then a bias and leaky ReLU (slope 0.2, gain sqrt 2). The image is the sum over resolutions of
1 x 1 to-RGB convolutions ("skip" architecture), each upsampled by 2 with the same filter.

Module names follow the convention the original Rosetta code hooks: `convs.{i}.activate` is
the post-activation output of synthesis conv i (`conv1` is the 4 x 4 one), `to_rgbs.{i}.conv`
the to-RGB convolution at resolution 2^(i+3) (`to_rgb1` at 4 x 4). Generation is
deterministic: one w for every layer (no style mixing), noise maps are the stored constants
("const" noise mode), and truncation is w_avg + psi (w - w_avg).

`checkpoints` loads the published checkpoints into this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BLUR = (1.0, 3.0, 3.0, 1.0)
SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGAN2Config:
    """The shape of a generator; channels at resolution r are min(channel_base / r, max)."""

    resolution: int
    z_dim: int = 512
    w_dim: int = 512
    n_mlp: int = 8
    channel_base: int = 32768  # config F (rosinality's channel_multiplier=2); 16384 is E
    channel_max: int = 512
    lr_mlp: float = 0.01
    conv_clamp: float | None = None  # NVIDIA's training code clamps at 256 when set

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"StyleGAN2 resolution must be a power of two >= 8, not {r}")

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def log2(self) -> int:
        return int(math.log2(self.resolution))


def layer_names(cfg: StyleGAN2Config) -> tuple[str, ...]:
    """The hooked layers, as the original code picks them: every `convs.{i}.activate` and
    `to_rgbs.{i}.conv` (not the 4 x 4 `conv1` and `to_rgb1`)."""
    levels = cfg.log2 - 2
    return (tuple(f"convs.{i}.activate" for i in range(2 * levels))
            + tuple(f"to_rgbs.{i}.conv" for i in range(levels)))


def _blur_kernel(gain: float) -> torch.Tensor:
    k = torch.tensor(BLUR)
    k = torch.outer(k, k)
    return k / k.sum() * gain


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, pad: int, up: bool) -> torch.Tensor:
    """Filter every channel with the 4 x 4 kernel; `up`: after zero-insertion upsampling x2."""
    c = x.shape[1]
    weight = kernel.to(x.dtype).expand(c, 1, *kernel.shape)
    if up:  # = insert zeros, pad (2, 1), correlate: a stride-2 transposed convolution
        return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad)), weight, groups=c)


class EqualLinear(nn.Module):
    """A dense layer with equalised learning rate: weight * lr / sqrt(in), bias * lr."""

    def __init__(self, cin: int, cout: int, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activate else x


class Mapping(nn.Module):
    """z -> w: normalise z's second moment, then `n_mlp` leaky-ReLU layers; keeps w_avg."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.n_mlp
        self.layers = nn.ModuleList(EqualLinear(a, b, cfg.lr_mlp, activate=True)
                                    for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = layer(x)
        return x


class ModulatedConv(nn.Module):
    """A convolution whose input channels are scaled by a style from w, then demodulated."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.demodulate = demodulate
        self.up = up
        self.gain = 1.0 if demodulate else 1 / math.sqrt(cin * kernel * kernel)
        self.register_buffer("blur", _blur_kernel(4.0), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch, cin, height, width = x.shape
        cout, _, k, _ = self.weight.shape
        styles = self.affine(w) * self.gain
        weight = self.weight[None] * styles[:, None, :, None, None]  # [batch, out, in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)[
                :, :, None, None, None]
        x = x.reshape(1, batch * cin, height, width)
        if self.up:  # transposed conv, stride 2, then the blur (padding 1, 1)
            weight = weight.transpose(1, 2).reshape(batch * cin, cout, k, k)
            x = F.conv_transpose2d(x, weight, stride=2, groups=batch)
            x = _depthwise(x, self.blur, pad=1, up=False)
        else:
            x = F.conv2d(x, weight.reshape(batch * cout, cin, k, k), padding=k // 2,
                         groups=batch)
        return x.reshape(batch, cout, *x.shape[2:])


class BiasLeakyReLU(nn.Module):
    """Bias, leaky ReLU (0.2) times sqrt 2, optional clamp: a synthesis conv's activation."""

    def __init__(self, channels: int, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2
        return x if self.clamp is None else x.clamp(-self.clamp, self.clamp)


class StyledConv(nn.Module):
    """Modulated conv, plus noise (stored map x strength), then `activate`."""

    def __init__(self, cin: int, cout: int, res: int, cfg: StyleGAN2Config, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, cfg.w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise", torch.randn(1, 1, res, res))
        self.activate = BiasLeakyReLU(cout, cfg.conv_clamp)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x, w) + self.noise * self.noise_strength)


class ToRGB(nn.Module):
    """1 x 1 modulated conv without demodulation, plus bias, plus the upsampled skip image."""

    def __init__(self, cin: int, cfg: StyleGAN2Config):
        super().__init__()
        self.conv = ModulatedConv(cin, 3, 1, cfg.w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))
        self.clamp = cfg.conv_clamp
        self.register_buffer("blur", _blur_kernel(4.0), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None
                ) -> torch.Tensor:
        y = self.conv(x, w) + self.bias[None, :, None, None]
        if self.clamp is not None:
            y = y.clamp(-self.clamp, self.clamp)
        return y if skip is None else y + _depthwise(skip, self.blur, pad=0, up=True)


class Generator(nn.Module):
    """z [batch, z_dim] -> image [batch, 3, resolution, resolution] (roughly in [-1, 1])."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        self.mapping = Mapping(cfg)
        c4 = cfg.channels(4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv1 = StyledConv(c4, c4, 4, cfg)
        self.to_rgb1 = ToRGB(c4, cfg)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        cin = c4
        for level in range(3, cfg.log2 + 1):
            res, cout = 2 ** level, cfg.channels(2 ** level)
            self.convs.append(StyledConv(cin, cout, res, cfg, up=True))
            self.convs.append(StyledConv(cout, cout, res, cfg))
            self.to_rgbs.append(ToRGB(cout, cfg))
            cin = cout

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        avg = self.mapping.w_avg.to(w.dtype)
        return avg + psi * (w - avg)

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        x = self.const.expand(w.shape[0], -1, -1, -1)
        x = self.conv1(x, w)
        image = self.to_rgb1(x, w, None)
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k + 1](self.convs[2 * k](x, w), w)
            image = to_rgb(x, w, image)
        return image

    def forward(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        w = self.mapping(z)
        if truncation != 1:
            w = self.truncate(w, truncation)
        return self.synthesis(w)

    @torch.no_grad()
    def estimate_w_avg(self, samples: int = 4096, seed: int = 0) -> None:
        """Set w_avg to the mean w of `samples` fixed-seed latents (for checkpoints without
        one); the same weights always give the same average."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(samples, self.cfg.z_dim, generator=gen).to(self.const.device)
        self.mapping.w_avg.copy_(self.mapping(z).mean(dim=0))


def generate(model: Generator, z: torch.Tensor, y: torch.Tensor | None,
             truncation: float | None, default_psi: float = 0.7) -> torch.Tensor:
    """The registry's `generate`: truncation psi (default 0.7), images clamped to [-1, 1]."""
    psi = default_psi if truncation is None else float(truncation)
    return model(z, psi).clamp(-1, 1)
