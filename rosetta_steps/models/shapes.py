"""Architectures of the shapes zoo: a small GAN generator and three discriminative models.

The zoo mixes architectures and objectives as the paper's does (Table 2): a convolutional
generator (DCGAN-style upsample-conv blocks, BatchNorm and ReLU), a ResNet trained with
labels, the same ResNet family trained without labels, and a ViT trained as a masked
autoencoder. The ResNets and the ViT are timm's own classes, so they are hooked by the same
layer names as the paper's ResNet-50 and ViT-B (`layer1..4`, `blocks.i.mlp.act`). The
objectives live in `rosetta_steps.training`; the registry entries at the end name them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from ..core import world
from .registry import DISCRIMINATIVE, GENERATOR, Latent, ModelSpec, Preprocess, register

if TYPE_CHECKING:
    from timm.models.resnet import ResNet
    from timm.models.vision_transformer import VisionTransformer

Z_DIM = 64
GAN_WIDTH = 32
CNN_CHANNELS = (16, 32, 64, 128)
VIT = {"embed_dim": 96, "depth": 4, "num_heads": 3, "patch_size": 8}
NUM_LABELS = len(world.SHAPES) + len(world.COLORS)


class _UpBlock(nn.Module):
    """x2 nearest upsampling, 3x3 conv, BatchNorm, ReLU (the stem maps z to 4 x 4 instead).

    `act` is the hooked unit output.
    """

    def __init__(self, cin: int, cout: int, stem: bool = False):
        super().__init__()
        self.up = nn.Identity() if stem else nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = (nn.ConvTranspose2d(cin, cout, 4, 1, 0, bias=False) if stem
                     else nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
        self.norm = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.norm(self.conv(self.up(x))))


class ShapesGenerator(nn.Module):
    """z [batch, z_dim] -> image [batch, 3, 64, 64] in [-1, 1]; units at 4, 8, 16, 32, 64 px.

    The last block works at the output's own resolution, so edges are drawn by a learned
    convolution rather than by nearest upsampling (which left the first zoo's shapes blurry).
    """

    def __init__(self, z_dim: int = Z_DIM, width: int = GAN_WIDTH):
        super().__init__()
        self.z_dim = z_dim
        self.stem = _UpBlock(z_dim, 8 * width, stem=True)
        self.up1 = _UpBlock(8 * width, 4 * width)
        self.up2 = _UpBlock(4 * width, 2 * width)
        self.up3 = _UpBlock(2 * width, width)
        self.up4 = _UpBlock(width, width // 2)
        self.to_rgb = nn.Conv2d(width // 2, 3, 3, 1, 1)

    def forward(self, z):
        x = self.up4(self.up3(self.up2(self.up1(self.stem(z[:, :, None, None])))))
        return self.to_rgb(x).tanh()


GAN_LAYERS = ("stem.act", "up1.act", "up2.act", "up3.act", "up4.act")


def shapes_resnet(num_classes: int = 0) -> ResNet:
    """A ResNet-10-style timm ResNet for 64 px input: stride-2 stem, no max-pool.

    Units at layer1..layer4: 16, 32, 64, 128 channels at 32, 16, 8, 4 px.
    """
    from timm.models.resnet import BasicBlock, ResNet  # timm costs seconds: only when built

    model = ResNet(BasicBlock, layers=(1, 1, 1, 1), channels=CNN_CHANNELS,
                   stem_width=CNN_CHANNELS[0], num_classes=num_classes)
    model.maxpool = nn.Identity()
    return model


CNN_LAYERS = ("layer1", "layer2", "layer3", "layer4")


def shapes_vit() -> VisionTransformer:
    """A small timm ViT on 8 px patches of a 64 px image (8 x 8 tokens plus a class token).

    Its pooled feature (for probes) is the mean patch token, as MAE probes it.
    """
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=world.SIZE, num_classes=0, global_pool="avg", mlp_ratio=4.0,
                             **VIT)


VIT_LAYERS = tuple(f"blocks.{i}.mlp.act" for i in range(VIT["depth"]))


SHAPES_INPUT = Preprocess(size=64, resize="bilinear")


def _train_hint(name: str) -> str:
    return (f"the trained file ships as data/zoo/shapes/{name}.safetensors; or train it with: "
            f"python -m rosetta_steps.train {name} --out results/zoo/trained/{name}.safetensors")


register(ModelSpec(
    name="shapes-gan", kind=GENERATOR,
    objective="GAN (hinge loss, spectral-norm critic) on the shapes world",
    build=ShapesGenerator, layers=GAN_LAYERS, latent=Latent(dim=Z_DIM),
    weights_hint=_train_hint("shapes-gan"), tags=("shapes",)))
register(ModelSpec(
    name="shapes-cnn-sup", kind=DISCRIMINATIVE,
    objective="supervised multi-label shape and colour classification",
    build=lambda: shapes_resnet(NUM_LABELS), layers=CNN_LAYERS, preprocess=SHAPES_INPUT,
    weights_hint=_train_hint("shapes-cnn-sup"), tags=("shapes",)))
register(ModelSpec(
    name="shapes-cnn-ssl", kind=DISCRIMINATIVE,
    objective="self-supervised contrastive (SimCLR), no labels",
    build=shapes_resnet, layers=CNN_LAYERS, preprocess=SHAPES_INPUT,
    weights_hint=_train_hint("shapes-cnn-ssl"), tags=("shapes",)))
register(ModelSpec(
    name="shapes-vit-mae", kind=DISCRIMINATIVE,
    objective="masked autoencoder (MAE) encoder, no labels",
    build=shapes_vit, layers=VIT_LAYERS, preprocess=SHAPES_INPUT,
    weights_hint=_train_hint("shapes-vit-mae"), tags=("shapes",)))
