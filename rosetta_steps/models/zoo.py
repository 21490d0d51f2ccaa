"""The registry entries of the shapes zoo (one `register` call per model)."""

from __future__ import annotations

from .registry import DISCRIMINATIVE, GENERATOR, Latent, ModelSpec, Preprocess, register
from .shapes_zoo import (
    CNN_LAYERS,
    GAN_LAYERS,
    NUM_LABELS,
    VIT_LAYERS,
    Z_DIM,
    ShapesGenerator,
    shapes_resnet,
    shapes_vit,
)

SHAPES_INPUT = Preprocess(size=64, resize="bilinear")


def _train_hint(name: str) -> str:
    return (f"train it with: python -m rosetta_steps.train {name} "
            f"--out results/zoo/shapes/{name}.safetensors")


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
