"""The registry entries of the paper's model zoo (Table 2 and the original code's options).

Discriminative models hook what the original code hooks: the outputs of `layer1..4` of the
ResNet-50s (256, 512, 1024, 2048 units at 56, 28, 14, 7 px for 224 input) and the MLP GELU of
every ViT-B block (12 x 3072 units at 14 px, 28 px for 8 px patches). Each takes its own
input: a bicubic resize to 224 as the original, then ImageNet's or CLIP's mean and std.
Generators: BigGAN-deep through pytorch-pretrained-biggan (class-conditional, conv outputs,
truncation 1.0 by default as the original code's) and this project's StyleGAN2 (each
synthesis conv's activation and each to-RGB conv, truncation psi 0.7), StyleGAN3-R and
StyleGAN-XL (the Fourier input and every synthesis layer; XL also the synthesis output, as
the original; truncation 0.7, towards the class's mean w for XL).

Weights (see `weights`): timm's and open_clip's files from the Hugging Face Hub, DINO's
ResNet-50 and BigGAN's files from their URLs into $TORCH_HOME/hub/checkpoints. NVIDIA
publishes StyleGAN2 FFHQ as a PyTorch pickle (downloaded); the LSUN cat, horse and car
generators have no PyTorch download, so their converted checkpoints (the files the original
code loads) must be put in that folder or passed as a path. StyleGAN3 and StyleGAN-XL come
as NVIDIA network pickles, downloaded and read without running their code.
"""

from __future__ import annotations

from functools import partial

from . import biggan, stylegan2, stylegan3, styleganxl
from .backbones import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESNET_LAYERS,
    VIT_LAYERS,
    clip_rn50,
    load_clip_visual,
    load_timm_weights,
    timm_model,
)
from .checkpoints import load_generator, load_matching
from .imagenet import imagenet_classes
from .registry import DISCRIMINATIVE, GENERATOR, Latent, ModelSpec, Preprocess, register
from .weights import HubFile, Source, UrlFile

IMAGENET_224 = Preprocess(size=224, resize="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD)
CLIP_224 = Preprocess(size=224, resize="bicubic", mean=CLIP_MEAN, std=CLIP_STD)
TIMM_FILES = ("model.safetensors", "pytorch_model.bin")
DINO_RN50_URL = "https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/"


def _timm_source(hub_id: str) -> Source:
    return Source(((HubFile(hub_id, TIMM_FILES),),))


def _disc(name: str, objective: str, build, layers, preprocess, source, loader) -> None:
    register(ModelSpec(name=name, kind=DISCRIMINATIVE, objective=objective, build=build,
                       layers=layers, preprocess=preprocess, source=source,
                       load_weights=loader, tags=("paper",)))


_disc("resnet50", "supervised ImageNet classification (torchvision's weights)",
      partial(timm_model, "resnet50"), RESNET_LAYERS, IMAGENET_224,
      _timm_source("timm/resnet50.tv_in1k"), load_timm_weights)
_disc("dino_rn50", "self-supervised DINO on ImageNet, no labels",
      partial(timm_model, "resnet50", num_classes=0), RESNET_LAYERS, IMAGENET_224,
      Source(((UrlFile("dino_resnet50_pretrain.pth",
                       DINO_RN50_URL + "dino_resnet50_pretrain.pth"),),)), load_timm_weights)
_disc("clip_rn50", "CLIP image tower, contrastive image-text (OpenAI WebImageText)",
      clip_rn50, RESNET_LAYERS, CLIP_224,
      Source(((HubFile("timm/resnet50_clip.openai",
                       ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")),),)),
      load_clip_visual)
for _name, _arch, _objective in (
        ("dino_vitb16", "vit_base_patch16_224.dino", "self-supervised DINO ViT-B/16, no labels"),
        ("dino_vitb8", "vit_base_patch8_224.dino", "self-supervised DINO ViT-B/8, no labels"),
        ("mae_vitb16", "vit_base_patch16_224.mae", "masked autoencoder (MAE) ViT-B/16 encoder")):
    _disc(_name, _objective, partial(timm_model, _arch), VIT_LAYERS, IMAGENET_224,
          _timm_source(f"timm/{_arch}"), load_timm_weights)

for _res in (128, 256, 512):
    _folder = f"biggan-deep-{_res}"
    register(ModelSpec(
        name=_folder, kind=GENERATOR,
        objective=f"class-conditional GAN on ImageNet (BigGAN-deep, {_res} px)",
        build=partial(biggan.build, _res), layers=biggan.layer_names(_res),
        latent=Latent(dim=biggan.Z_DIM, truncation=1.0, num_classes=biggan.NUM_CLASSES),
        generate=biggan.generate, load_weights=biggan.load_weights,
        source=Source(((UrlFile("pytorch_model.bin", biggan.URL.format(
            res=_res, file="pytorch_model.bin"), subdir=_folder),
                        UrlFile("config.json", biggan.URL.format(res=_res, file="config.json"),
                                subdir=_folder)),), folder=True),
        weights_hint="a folder with config.json and pytorch_model.bin",
        class_names=imagenet_classes, tags=("paper",)))

_NO_DOWNLOAD = ("NVIDIA publishes it only as a TensorFlow pickle: use rosinality's "
                "stylegan2-pytorch convert_weight.py on {tf}, or the original Rosetta code's "
                "checkpoint folder")
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
for _name, _res, _pt, _pkl_url in (
        ("stylegan2-lsun_cat", 256, "stylegan2-cat-config-f.pt", None),
        ("stylegan2-lsun_horse", 256, "stylegan2-horse-config-f.pt", None),
        ("stylegan2-lsun_car", 512, "stylegan2-car-config-f.pt", None),
        ("stylegan2-ffhq", 1024, "stylegan2-ffhq-config-f.pt",
         _NGC + "stylegan2-ffhq-1024x1024.pkl")):
    _cfg = stylegan2.StyleGAN2Config(resolution=_res)
    _note = (_NO_DOWNLOAD.format(tf=_pt.replace(".pt", ".pkl")) if _pkl_url is None
             else "rosinality's conversion of NVIDIA's TensorFlow pickle")
    _options = [(UrlFile(_pt, note=_note),)]
    if _pkl_url:
        _options.insert(0, (UrlFile(_pkl_url.rsplit("/", 1)[-1], _pkl_url),))
    register(ModelSpec(
        name=_name, kind=GENERATOR,
        objective=f"unconditional StyleGAN2 (config F) on {_name.split('-')[1]}, {_res} px",
        build=partial(stylegan2.Generator, _cfg),
        layers=stylegan2.layer_names(_cfg),
        latent=Latent(dim=_cfg.z_dim, truncation=0.7, space="w"),
        generate=stylegan2.generate,
        load_weights=partial(load_matching, _cfg),
        source=Source(tuple(_options)),
        weights_hint=f"a converted {_pt} (g_ema) or an NVIDIA network pickle (G_ema)",
        tags=("paper",)))

for _name, _res, _data, _pkl in (
        ("stylegan3-ffhq", 1024, "FFHQ-U", "stylegan3-r-ffhqu-1024x1024.pkl"),
        ("stylegan3-afhq", 512, "AFHQv2", "stylegan3-r-afhqv2-512x512.pkl")):
    _cfg3 = stylegan3.StyleGAN3Config(resolution=_res)
    register(ModelSpec(
        name=_name, kind=GENERATOR,
        objective=f"unconditional StyleGAN3-R (alias-free) on {_data}, {_res} px",
        build=partial(stylegan3.Generator, _cfg3), layers=stylegan3.layer_names(_cfg3),
        latent=Latent(dim=_cfg3.z_dim, truncation=0.7, space="w"),
        generate=stylegan3.generate, load_weights=load_generator,
        source=Source(((UrlFile(_pkl, _NGC + _pkl),),)),
        weights_hint=f"NVIDIA's network pickle {_pkl} (G_ema)", tags=("paper",)))

# StyleGAN-XL's ImageNet models: the paper's 256 px one and the published lower-resolution
# stages of the same progressive growing (a cheaper generator with the same code path)
_XL_URL = "https://s3.eu-central-1.amazonaws.com/avg-projects/stylegan_xl/models/"
for _res in (16, 32, 64, 128, 256):
    _xl = styleganxl.StyleGANXLConfig(resolution=_res)
    register(ModelSpec(
        name=f"styleganxl-imagenet{_res}", kind=GENERATOR,
        objective=f"class-conditional StyleGAN-XL on ImageNet, {_res} px",
        build=partial(styleganxl.GeneratorXL, _xl), layers=styleganxl.layer_names(_xl),
        latent=Latent(dim=_xl.stem.z_dim, truncation=0.7, num_classes=_xl.num_classes,
                      space="w"),
        generate=styleganxl.generate, load_weights=load_generator,
        source=Source(((UrlFile(f"imagenet{_res}.pkl", f"{_XL_URL}imagenet{_res}.pkl",
                                subdir="stylegan_xl"),),)),
        weights_hint=f"StyleGAN-XL's network pickle imagenet{_res}.pkl (G_ema)",
        class_names=imagenet_classes, tags=("paper",) if _res == 256 else ()))
