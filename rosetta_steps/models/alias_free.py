"""The signal-processing blocks of StyleGAN3 (Karras et al., NeurIPS 2021), in plain PyTorch.

- `lowpass`: the paper's Kaiser-windowed low-pass filters, separable sinc or radial jinc;
- `filtered_lrelu`: the alias-free nonlinearity (Sec. 3.2): upsample (zero insertion and a
  low-pass, computed polyphase), bias, leaky ReLU, clamp, low-pass and downsample, with the
  upfirdn2d conventions of NVIDIA's reference implementation (true convolution, padding at
  the upsampled rate, gain up^2 on the upsampling filter), from ordinary convolutions, so it
  runs wherever PyTorch does;
- `modulated_conv2d`: the style-modulated, demodulated convolution as one grouped convolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def lowpass(taps: int, cutoff: float, width: float, fs: float, radial: bool
            ) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass: separable sinc (1-D taps) or radial jinc (2-D), unit DC
    gain; None for a single tap (identity)."""
    if taps == 1:
        return None
    from scipy import signal, special
    if not radial:
        return torch.tensor(signal.firwin(taps, cutoff, width=width, fs=fs).tolist())
    x = (np.arange(taps) - (taps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = special.j1(2 * cutoff * np.pi * r) / (np.pi * r)
    beta = signal.kaiser_beta(signal.kaiser_atten(taps, width / (fs / 2)))
    window = np.kaiser(taps, beta)
    f = f * np.outer(window, window)
    return torch.tensor((f / f.sum()).tolist())


def _pad_axis(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """Zero-pad (negative: crop) one axis, dim 2 (rows) or 3 (columns)."""
    return F.pad(x, (0, 0, lo, hi) if dim == 2 else (lo, hi))


def _correlate(x: torch.Tensor, taps: torch.Tensor, dim: int, stride: int = 1) -> torch.Tensor:
    """Correlate every channel with 1-D taps along one axis (valid part, strided)."""
    c, k = x.shape[1], len(taps)
    shape = (c, 1, k, 1) if dim == 2 else (c, 1, 1, k)
    s = (stride, 1) if dim == 2 else (1, stride)
    return F.conv2d(x, taps.to(x.dtype).expand(c, 1, k).reshape(shape), stride=s, groups=c)


def _upsample_axis(x: torch.Tensor, f: torch.Tensor, dim: int, up: int, pad: tuple[int, int]
                   ) -> torch.Tensor:
    """Zero-insertion upsampling by `up`, padding, filtering with f (gain up) along one axis,
    computed polyphase: output sample m only meets the filter taps that land on input
    samples, taps (pad0 - m) mod up, up + that, ..., so each output phase is a short
    correlation at the input rate and the phases are interleaved."""
    n, k = x.shape[dim], len(f)
    h = f.flip(0) * up  # true convolution = correlation with the flipped filter
    length = n * up + pad[0] + pad[1] - k + 1
    count = -(-length // up)
    phases = []
    for c in range(up):
        rho = (pad[0] - c) % up
        base = (c + rho - pad[0]) // up  # the first input sample output c meets
        taps = h[rho::up]
        xp = _pad_axis(x, dim, -base, base + count + len(taps) - 1 - n)
        phases.append(_correlate(xp, taps, dim))
    y = torch.stack(phases, dim=dim + 1)  # [..., count, up, ...]: phase c of sample j
    shape = list(x.shape)
    shape[dim] = count * up
    return y.reshape(shape).narrow(dim, 0, length)


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None,
                   bias: torch.Tensor, up: int, down: int, padding: tuple[int, int, int, int],
                   gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, upsample by `up` with filter fu (gain up^2), leaky ReLU times `gain`, clamp,
    filter with fd and keep every `down`-th sample. fu is 1-D (separable) or None; fd 1-D,
    2-D (radial) or None; `padding` (x0, x1, y0, y1) applies at the upsampled rate."""
    x = x + bias.to(x.dtype)[None, :, None, None]
    px0, px1, py0, py1 = padding
    if fu is None:
        if up != 1:
            raise ValueError("upsampling needs a filter")
        x = F.pad(x, (px0, px1, py0, py1))
    else:
        x = _upsample_axis(_upsample_axis(x, fu, 3, up, (px0, px1)), fu, 2, up, (py0, py1))
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    if fd is None:
        return x[:, :, ::down, ::down]
    if fd.ndim == 1:
        return _correlate(_correlate(x, fd.flip(0), 3, down), fd.flip(0), 2, down)
    c = x.shape[1]
    return F.conv2d(x, fd.flip(0, 1).to(x.dtype).expand(c, 1, *fd.shape), stride=down, groups=c)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool, padding: int, input_gain: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """Per-sample convolution with the weight scaled by the sample's styles over input
    channels, then (demodulate) normalised to unit norm per output channel, as one grouped
    convolution. Weight and styles are first normalised to unit RMS (StyleGAN3's fp16
    safety, which demodulation makes a no-op up to its epsilon); `input_gain` scales inputs."""
    batch, cin = x.shape[:2]
    cout, _, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight[None] * styles[:, None, :, None, None]  # [batch, out, in, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()[:, :, None, None, None]
    if input_gain is not None:
        w = w * input_gain.expand(batch, cin)[:, None, :, None, None]
    y = F.conv2d(x.reshape(1, batch * cin, *x.shape[2:]),
                 w.reshape(batch * cout, cin, kh, kw).to(x.dtype), padding=padding, groups=batch)
    return y.reshape(batch, cout, *y.shape[2:])
