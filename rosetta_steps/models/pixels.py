"""`pixels` and `pixels-256`: a pseudo-model whose units are fixed measurements of the image, at
its resolution (64 and 256 px), mined against G like any D: a G unit that correlates with one
of them as well as with a D's unit is explained by the pixels, not by what the D learned (the
pixel control of issue 36). No weights, nothing trained. Layers and their channels:

- `rgb`: R, G, B in [0, 1];
- `lab`: CIELAB L*, a*, b* (sRGB, D65 white; scikit-image's `rgb2lab`);
- `hsv`: the sine and cosine of the hue angle (0 for grey pixels) and the saturation;
- `blur`: luma (ITU-R BT.601) blurred by Gaussians of sigma 1, 2 and 4 px at 64 px;
- `sobel`: the magnitude of luma's Sobel gradient (kernels [1, 2, 1] x [-1, 0, 1]);
- `gabor`: Gabor energy (the modulus of the complex response; scikit-image's `gabor_kernel`,
  bandwidth 1) of luma at orientations 0, 45, 90 and 135 degrees and wavelengths 4 and 8 px
  at 64 px.

Sizes in pixels scale with the resolution (x4 at 256 px); borders are mirrored (scipy's
`mirror`). Its preprocessing resizes an image by area to the model's size, in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from skimage.filters import gabor_kernel
from torch import nn

from .registry import DISCRIMINATIVE, LUMA, ModelSpec, Preprocess, register

BLUR_SIGMAS = (1.0, 2.0, 4.0)  # px at 64 px
GABOR_WAVELENGTHS = (4.0, 8.0)  # px at 64 px
GABOR_ANGLES = (0.0, 45.0, 90.0, 135.0)  # degrees
LAYERS = ("rgb", "lab", "hsv", "blur", "sobel", "gabor")
XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169),
                (0.019334, 0.119193, 0.950227))
WHITE_D65 = (0.95047, 1.0, 1.08883)
# each layer's channels by name, in order (what the pages and the controls call them)
CHANNELS = {
    "rgb": ("R", "G", "B"), "lab": ("L*", "a*", "b*"),
    "hsv": ("hue sin", "hue cos", "saturation"),
    "blur": tuple(f"luma blur {s:g}px" for s in BLUR_SIGMAS), "sobel": ("edges",),
    "gabor": tuple(f"Gabor {a:g}deg {w:g}px" for w in GABOR_WAVELENGTHS for a in GABOR_ANGLES),
}


def channel_name(layer: str, channel: int) -> str:
    """A pixel channel's name (e.g. `hsv saturation`), or `layer:channel` for another."""
    names = CHANNELS.get(layer, ())
    return f"{layer} {names[channel]}" if 0 <= channel < len(names) else f"{layer}:{channel}"


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(
        1, keepdim=True)


def _filter(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """x [b, 1, h, w] correlated with kernels [k, 1, s, s] (s odd), borders mirrored."""
    pad = kernels.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), kernels.to(x.dtype))


class Lab(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
        m = torch.tensor(XYZ_FROM_RGB, dtype=x.dtype, device=x.device)
        xyz = torch.einsum("ij,bjhw->bihw", m, linear)
        xyz = xyz / torch.tensor(WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
        return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                            200 * (f[:, 1] - f[:, 2])], dim=1)


class Hsv(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = x.max(dim=1).values, x.min(dim=1).values
        spread = top - bottom
        r, g, b = x.unbind(1)
        safe = spread.clamp_min(1e-12)
        sector = torch.where(top == r, ((g - b) / safe) % 6,
                             torch.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4))
        angle = sector * (math.pi / 3)
        grey = spread <= 0
        sat = torch.where(top > 0, spread / top.clamp_min(1e-12), torch.zeros_like(top))
        return torch.stack([torch.where(grey, 0.0, torch.sin(angle)),
                            torch.where(grey, 0.0, torch.cos(angle)), sat], dim=1)


class Blur(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        sigmas = [s * scale for s in BLUR_SIGMAS]
        half = math.ceil(3 * max(sigmas))
        t = torch.arange(-half, half + 1, dtype=torch.float64)
        kernels = []
        for sigma in sigmas:
            g = torch.exp(-t ** 2 / (2 * sigma ** 2))
            kernels.append(torch.outer(g, g) / g.sum() ** 2)
        self.register_buffer("kernels", torch.stack(kernels)[:, None].float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _filter(_luma(x), self.kernels)


class Sobel(nn.Module):
    def __init__(self):
        super().__init__()
        d = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        self.register_buffer("kernels", torch.stack([d, d.T])[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx, gy = _filter(_luma(x), self.kernels).unbind(1)
        return torch.hypot(gx, gy)[:, None]


class Gabor(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        kernels = [gabor_kernel(1 / (w * scale), theta=math.radians(a))
                   for w in GABOR_WAVELENGTHS for a in GABOR_ANGLES]
        side = max(k.shape[0] for k in kernels)
        padded = torch.zeros(len(kernels), 2, side, side, dtype=torch.float64)
        for i, k in enumerate(kernels):
            o = (side - k.shape[0]) // 2
            k = torch.from_numpy(k)
            # F.conv2d correlates; flipping makes it scipy's convolution, as skimage's gabor
            padded[i, 0, o:o + k.shape[0], o:o + k.shape[1]] = k.real.flip(0, 1)
            padded[i, 1, o:o + k.shape[0], o:o + k.shape[1]] = k.imag.flip(0, 1)
        self.register_buffer("kernels", padded.reshape(-1, 1, side, side).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = _filter(_luma(x), self.kernels)
        real, imag = response[:, 0::2], response[:, 1::2]
        return torch.hypot(real, imag)


class Pixels(nn.Module):
    """Image [b, 3, s, s] in [0, 1] -> the measurements, one hooked module per group."""

    def __init__(self, size: int = 64):
        super().__init__()
        scale = size / 64
        self.rgb, self.lab, self.hsv = nn.Identity(), Lab(), Hsv()
        self.blur, self.sobel, self.gabor = Blur(scale), Sobel(), Gabor(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, name)(x) for name in LAYERS], dim=1)


for size, name in ((64, "pixels"), (256, "pixels-256")):
    register(ModelSpec(
        name=name, kind=DISCRIMINATIVE,
        objective=f"none: fixed image measurements at {size} px (colour, blur, edges, Gabor "
                  "energy), the pixel control",
        build=lambda size=size: Pixels(size), layers=LAYERS,
        preprocess=Preprocess(size=size, resize="area", mean=(0.0, 0.0, 0.0),
                              std=(1.0, 1.0, 1.0)),
        tags=("control",)))
