"""A StyleGAN3 generator (Karras et al., "Alias-Free Generative Adversarial Networks",
NeurIPS 2021), written for this project in plain PyTorch (CPU and CUDA, no custom kernels).

The architecture of the paper and its published configurations: a 2-layer mapping network
from z to w; a synthesis network that starts from Fourier features (a bank of sinusoids whose
frequencies lie in a disc of the first layer's bandwidth, rotated and translated by an affine
of w), then `num_layers` modulated convolutions, each followed by a *filtered* leaky ReLU: the
signal is upsampled (zero insertion and a windowed-sinc low-pass), passed through the
nonlinearity at the higher rate, low-passed again and downsampled, so that the nonlinearity
adds no aliasing (Sec. 3.2). Cutoffs, stopbands, sampling rates and channel counts follow
the paper's geometric schedule over layers (Sec. 3.3, App. F), with a 10-pixel margin around
the image in every map except the last two layers and a 1 x 1 ToRGB layer. StyleGAN3-R
("config R") uses 1 x 1 convolutions and radially symmetric (jinc) downsampling filters in
all but the critically sampled layers; StyleGAN3-T 3 x 3 convolutions and separable filters.

Hooked layers, as the original Rosetta code picks them ("synthesis." modules except the
affines): `synthesis.input` and every `synthesis.L{i}_{size}_{channels}` layer. Their maps are
kept as produced, margins included (36 x 36 for the 16 px layers): those are the tensors the
original's forward hooks see, and they are square. Generation is deterministic: one w for
every layer (no mixing), no noise inputs (StyleGAN3 has none), and truncation is
w_avg + psi (w - w_avg), psi 0.7 by default.

The signal processing (filter design, filtered leaky ReLU, modulated convolution) is in
`alias_free`; `checkpoints` loads NVIDIA's network pickles into this module;
`styleganxl` builds StyleGAN-XL from the same layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .alias_free import filtered_lrelu, lowpass, modulated_conv2d

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class LayerPlan:
    """One synthesis layer: its name, shapes and signal-processing parameters."""

    name: str
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    is_torgb: bool = False
    is_critically_sampled: bool = False
    conv_kernel: int = 3  # the ToRGB layer always uses 1
    radial: bool = False  # radially symmetric downsampling filter (not when critical)
    filter_size: int = 6
    lrelu_upsampling: int = 2
    conv_clamp: float | None = 256.0

    @property
    def kernel(self) -> int:
        return 1 if self.is_torgb else self.conv_kernel

    @property
    def tmp_sampling_rate(self) -> float:
        rate = max(self.in_sampling_rate, self.out_sampling_rate)
        return rate * (1 if self.is_torgb else self.lrelu_upsampling)

    @property
    def up(self) -> int:
        return int(round(self.tmp_sampling_rate / self.in_sampling_rate))

    @property
    def down(self) -> int:
        return int(round(self.tmp_sampling_rate / self.out_sampling_rate))

    @property
    def up_taps(self) -> int:
        return self.filter_size * self.up if self.up > 1 and not self.is_torgb else 1

    @property
    def down_taps(self) -> int:
        return self.filter_size * self.down if self.down > 1 and not self.is_torgb else 1

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(x0, x1, y0, y1) padding at the upsampled rate that yields `out_size` samples,
        sample locations placed symmetrically (the paper's App. C.3)."""
        total = (self.out_size - 1) * self.down + 1
        total -= (self.in_size + self.kernel - 1) * self.up
        total += self.up_taps + self.down_taps - 2
        lo = (total + self.up) // 2
        return (lo, total - lo, lo, total - lo)


@dataclass(frozen=True)
class StyleGAN3Config:
    """The published hyper-parameters; the defaults are StyleGAN3-R's (train.py --cfg r)."""

    resolution: int
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 65536  # 32768 x 2 for config R
    channel_max: int = 1024
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2 ** 2.1
    last_stopband_rel: float = 2 ** 0.3
    margin: int = 10
    output_scale: float = 0.25
    conv_kernel: int = 1  # 3 for config T
    radial: bool = True  # False for config T


def schedule(cfg: StyleGAN3Config) -> tuple[np.ndarray, ...]:
    """Per layer 0..num_layers: cutoffs, stopbands, sampling rates, half-widths, sizes,
    channels (App. F's geometric progression)."""
    last_cutoff = cfg.resolution / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(cfg.num_layers + 1) / (cfg.num_layers - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, cfg.resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin * 2
    sizes[-2:] = cfg.resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = 3
    return cutoffs, stopbands, rates, half_widths, sizes, channels


def chain(cutoffs, rates, half_widths, sizes, channels, first: int, num_critical: int,
          conv_kernel: int, radial: bool) -> list[LayerPlan]:
    """Layers k = 0..n of a schedule (each takes layer k - 1's output, layer 0 its own
    input), named L{first + k}_{size}_{channels}; the last is the ToRGB layer and the
    `num_critical` before it are critically sampled."""
    n = len(cutoffs) - 1
    layers = []
    for k in range(n + 1):
        p = max(k - 1, 0)
        layers.append(LayerPlan(
            name=f"L{first + k}_{int(sizes[k])}_{int(channels[k])}",
            in_channels=int(channels[p]), out_channels=int(channels[k]), in_size=int(sizes[p]),
            out_size=int(sizes[k]), in_sampling_rate=int(rates[p]),
            out_sampling_rate=int(rates[k]), in_cutoff=float(cutoffs[p]),
            out_cutoff=float(cutoffs[k]), in_half_width=float(half_widths[p]),
            out_half_width=float(half_widths[k]), is_torgb=k == n,
            is_critically_sampled=k >= n - num_critical, conv_kernel=conv_kernel,
            radial=radial))
    return layers


def layer_plan(cfg: StyleGAN3Config) -> list[LayerPlan]:
    """The synthesis layers L0 .. L{num_layers} (the last is ToRGB)."""
    cutoffs, _, rates, half_widths, sizes, channels = schedule(cfg)
    return chain(cutoffs, rates, half_widths, sizes, channels, 0, cfg.num_critical,
                 cfg.conv_kernel, cfg.radial)


class FullyConnected(nn.Module):
    """A dense layer with equalised learning rate (weight * lr / sqrt(in), bias * lr),
    optionally followed by leaky ReLU (0.2) times sqrt 2."""

    def __init__(self, cin: int, cout: int, lr_mul: float = 1.0, bias_init=0.0,
                 activate: bool = False, weight_init: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) * (weight_init / lr_mul))
        self.bias = nn.Parameter(torch.tensor(np.broadcast_to(
            np.asarray(bias_init, dtype=np.float32), (cout,)).tolist()) / lr_mul)
        self.weight_gain = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activate else x


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class Mapping(nn.Module):
    """z -> w: z normalised to unit second moment, then leaky-ReLU layers (lr x0.01)."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = 0.01):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnected(dims[i], dims[i + 1], lr_mul,
                                                     activate=True))
        self.num_layers = num_layers
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(z.float())
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class SynthesisInput(nn.Module):
    """Fourier features: sinusoids with fixed random frequencies (in the first layer's
    bandwidth) and phases, rotated and translated by an affine of w, sampled on a
    `size` x `size` grid at `sampling_rate`, then mixed by a learned channel matrix."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float,
                 bandwidth: float):
        super().__init__()
        self.size, self.sampling_rate, self.bandwidth = size, sampling_rate, bandwidth
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnected(w_dim, 4, weight_init=0.0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        t = self.affine(w)  # (cos, sin, tx, ty) of the inverse rotation and translation
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        batch = w.shape[0]
        eye = torch.eye(3, device=w.device, dtype=w.dtype).expand(batch, 3, 3)
        rot = eye.clone()
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        shift = eye.clone()
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rot @ shift @ self.transform[None]
        phases = self.phases[None] + (self.freqs[None] @ m[:, :2, 2:]).squeeze(2)
        freqs = self.freqs[None] @ m[:, :2, :2]
        amplitude = (1 - (freqs.norm(dim=2) - self.bandwidth)
                     / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        half = 0.5 * self.size / self.sampling_rate  # grid extent in image units
        coords = (torch.arange(self.size, device=w.device, dtype=w.dtype) * 2 + 1
                  - self.size) / self.size * half  # pixel centres, as affine_grid's
        grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)
        x = torch.einsum("hwk,bck->bhwc", grid, freqs) + phases[:, None, None]
        x = torch.sin(x * (2 * math.pi)) * amplitude[:, None, None]
        x = x @ (self.weight / math.sqrt(self.weight.shape[0])).t()
        return x.permute(0, 3, 1, 2).contiguous()


class SynthesisLayer(nn.Module):
    """Modulated convolution, then the filtered leaky ReLU (linear for ToRGB)."""

    def __init__(self, spec: LayerPlan, w_dim: int):
        super().__init__()
        self.spec = spec
        self.affine = FullyConnected(w_dim, spec.in_channels, bias_init=1.0)
        k = spec.kernel
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones(()))
        self.register_buffer("up_filter", lowpass(
            spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate, False))
        self.register_buffer("down_filter", lowpass(
            spec.down_taps, spec.out_cutoff, spec.out_half_width * 2, spec.tmp_sampling_rate,
            spec.radial and not spec.is_critically_sampled))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.spec
        styles = self.affine(w)
        if s.is_torgb:
            styles = styles / math.sqrt(s.in_channels * s.kernel ** 2)
        x = modulated_conv2d(x, self.weight, styles, demodulate=not s.is_torgb,
                             padding=s.kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, s.up, s.down,
                              s.padding, gain=1.0 if s.is_torgb else SQRT2,
                              slope=1.0 if s.is_torgb else 0.2, clamp=s.conv_clamp)


class Synthesis(nn.Module):
    """Fourier-feature input, then the layers in order; the image is scaled by
    `output_scale`."""

    def __init__(self, w_dim: int, first: LayerPlan, layers: list[LayerPlan],
                 output_scale: float):
        super().__init__()
        self.input = SynthesisInput(w_dim, first.in_channels, first.in_size,
                                    first.in_sampling_rate, first.in_cutoff)
        self.layer_names = [spec.name for spec in layers]
        for spec in layers:
            self.add_module(spec.name, SynthesisLayer(spec, w_dim))
        self.output_scale = output_scale

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.input(w)
        for name in self.layer_names:
            x = getattr(self, name)(x, w)
        return x * self.output_scale


class Generator(nn.Module):
    """z [batch, z_dim] -> image [batch, 3, resolution, resolution] (roughly in [-1, 1])."""

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.cfg = cfg
        self.mapping = Mapping(cfg.z_dim, cfg.w_dim, cfg.mapping_layers)
        plan = layer_plan(cfg)
        self.synthesis = Synthesis(cfg.w_dim, plan[0], plan, cfg.output_scale)

    def forward(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        w = self.mapping(z)
        if truncation != 1:
            w = self.mapping.w_avg.to(w.dtype).lerp(w, truncation)
        return self.synthesis(w)


def layer_names(cfg: StyleGAN3Config) -> tuple[str, ...]:
    """The hooked modules: the Fourier input and every synthesis layer."""
    return ("synthesis.input", *(f"synthesis.{spec.name}" for spec in layer_plan(cfg)))


def generate(model: Generator, z: torch.Tensor, y: torch.Tensor | None,
             truncation: float | None, default_psi: float = 0.7) -> torch.Tensor:
    """The registry's `generate`: truncation psi (default 0.7), images clamped to [-1, 1]."""
    psi = default_psi if truncation is None else float(truncation)
    return model(z, psi).clamp(-1, 1)
