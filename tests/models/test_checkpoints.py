"""Every upstream checkpoint format loads back through the real loaders: random weights saved
in the format (timm and open_clip state dicts, DINO's and MAE's .pth, BigGAN's folder,
StyleGAN2's converted .pt and NVIDIA's pickle) give the outputs of the model they came from.
Also: StyleGAN2's generation properties and the restricted unpickler's refusals."""

import json
import os
import pickle
from functools import partial

import pytest
import torch
from safetensors.torch import save_file
from upstream_formats import nvidia_pickle, randomize, rosinality_state_dict

from rosetta_steps import models
from rosetta_steps.core.cli import UserError
from rosetta_steps.models import stylegan2
from rosetta_steps.models.checkpoints import load_checkpoint, load_matching
from rosetta_steps.models.unpickle import load_network_pickle

SMALL = stylegan2.StyleGAN2Config(resolution=32, z_dim=64, w_dim=64, n_mlp=3, channel_base=512,
                                  channel_max=64)


def maps_of(spec, model, x):
    with torch.no_grad():
        return spec.run(model, x)[1]


def assert_same_maps(spec, a, b, x):
    ma, mb = maps_of(spec, a, x), maps_of(spec, b, x)
    assert list(ma) == list(spec.layers)
    for name in spec.layers:
        assert torch.equal(ma[name], mb[name]), name


@pytest.mark.parametrize("name,fmt", [("resnet50", "timm"), ("dino_rn50", "dino"),
                                      ("mae_vitb16", "mae"), ("clip_rn50", "open_clip")])
def test_discriminative_state_dicts_load_back(name, fmt, tmp_path):
    spec, source = models.load(name, pretrained=False)
    state = source.state_dict()
    if fmt == "timm":  # timm's Hugging Face file
        path = tmp_path / "model.safetensors"
        save_file(state, path)
    elif fmt == "dino":  # DINO's published backbone: a torch state dict
        path = tmp_path / "dino_resnet50_pretrain.pth"
        torch.save(state, path)
    elif fmt == "mae":  # MAE's published .pth: {"model": state dict}
        path = tmp_path / "mae_pretrain_vit_base.pth"
        torch.save({"model": state}, path)
    else:  # open_clip's whole-CLIP state dict: the image tower under visual.*
        path = tmp_path / "open_clip_pytorch_model.bin"
        torch.save({**{f"visual.{k}": v for k, v in state.items()},
                    "token_embedding.weight": torch.zeros(8, 4), "logit_scale": torch.ones(())},
                   path)
    _, loaded = models.load(name, path)  # built with its own random weights, then loaded
    x = torch.randn(1, 3, 224, 224)
    assert_same_maps(spec, source, loaded, x)
    if name in ("resnet50", "clip_rn50"):  # post-ReLU units
        assert all((m >= 0).all() for m in maps_of(spec, source, x).values())


def test_a_wrong_file_is_one_line(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"fc.weight": torch.zeros(1000, 2048)}, path)
    with pytest.raises(UserError, match="resnet50: cannot load weights from .*Missing key"):
        models.load("resnet50", path)
    with pytest.raises(UserError, match="weights file .*absent.pth not found"):
        models.load("dino_rn50", tmp_path / "absent.pth")


def test_biggan_folder_with_config_loads_back(tmp_path):
    spec, source = models.load("biggan-deep-128", pretrained=False)
    folder = tmp_path / "biggan-deep-128"
    folder.mkdir()
    torch.save(source.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(source.config.to_dict()))
    _, loaded = models.load("biggan-deep-128", folder)
    z = spec.latent.sample(0, range(1), truncation=0.5)
    y = torch.tensor([spec.class_index("goldfish")])
    with torch.no_grad():
        images, maps = spec.run(source, z, y, 0.5)
        again, maps_again = spec.run(loaded, z, y, 0.5)
        other_class = spec.generate(source, z, torch.tensor([spec.class_index("church")]), 0.5)
    assert images.shape == (1, 3, 128, 128) and images.abs().max() <= 1
    assert images.std() > 0.01  # random weights give finite, non-constant images
    assert torch.equal(images, again)
    assert all(torch.equal(maps[k], maps_again[k]) for k in spec.layers)
    assert not torch.equal(images, other_class)  # the class is used
    with pytest.raises(UserError, match="give a class"):
        spec.generate(source, z, None, None)
    (folder / "config.json").write_text(json.dumps({**source.config.to_dict(), "output_dim": 256}))
    with pytest.raises(UserError, match="not BigGAN-deep-128's config"):
        models.load("biggan-deep-128", folder / "pytorch_model.bin")


@pytest.fixture
def small_generator():
    torch.manual_seed(0)
    return randomize(stylegan2.Generator(SMALL)).eval()


def _images(gen, z, psi=0.7):
    with torch.no_grad():
        return stylegan2.generate(gen, z, None, psi)


def test_stylegan2_converted_checkpoint_loads_back(small_generator, tmp_path):
    sd = rosinality_state_dict(small_generator)
    assert "convs.0.conv.blur.kernel" in sd and sd["convs.0.conv.weight"].ndim == 5
    path = tmp_path / "stylegan2-small-config-f.pt"
    torch.save({"g_ema": sd, "latent_avg": small_generator.mapping.w_avg.clone()}, path)
    spec = models.ModelSpec(name="small", kind=models.GENERATOR, objective="-",
                            build=partial(stylegan2.Generator, SMALL),
                            layers=stylegan2.layer_names(SMALL),
                            latent=models.Latent(dim=64, truncation=0.7, space="w"),
                            generate=stylegan2.generate, load_weights=partial(load_matching, SMALL))
    loaded = spec.load_weights(spec.build(), path)  # the registry entries' loader
    z = spec.latent.sample(0, range(3))
    with torch.no_grad():
        images, maps = spec.run(small_generator, z)
        again, maps_again = spec.run(loaded, z)
    assert torch.equal(images, again) and images.shape == (3, 3, 32, 32)
    assert [(k, m.shape[1], m.shape[-1]) for k, m in maps.items()] == [
        ("convs.0.activate", 64, 8), ("convs.1.activate", 64, 8), ("convs.2.activate", 32, 16),
        ("convs.3.activate", 32, 16), ("convs.4.activate", 16, 32), ("convs.5.activate", 16, 32),
        ("to_rgbs.0.conv", 3, 8), ("to_rgbs.1.conv", 3, 16), ("to_rgbs.2.conv", 3, 32)]
    assert all(torch.equal(maps[k], maps_again[k]) for k in maps)
    # older conversions: no noise maps, no latent_avg -> fixed-seed noise, estimated w_avg
    bare = {k: v for k, v in sd.items() if not k.startswith("noises.")}
    torch.save({"g_ema": bare}, tmp_path / "bare.pt")
    first, second = load_checkpoint(tmp_path / "bare.pt"), load_checkpoint(tmp_path / "bare.pt")
    assert torch.equal(_images(first, z), _images(second, z))
    assert not torch.equal(first.mapping.w_avg, small_generator.mapping.w_avg)
    with pytest.raises(UserError, match="stylegan2-lsun_cat: cannot load .*not this model's"):
        models.load("stylegan2-lsun_cat", path)  # a 32 px checkpoint is not LSUN cat's 256


def test_stylegan2_nvidia_pickle_loads_back_without_running_its_code(tmp_path):
    torch.manual_seed(1)
    cfg = stylegan2.StyleGAN2Config(**{**SMALL.__dict__, "conv_clamp": 1.0})
    source = randomize(stylegan2.Generator(cfg), seed=1).eval()
    marker = tmp_path / "executed.txt"
    path = tmp_path / "network-snapshot.pkl"
    nvidia_pickle(source, path, marker)
    loaded = load_checkpoint(path)
    assert loaded.cfg == cfg  # shape, mapping learning rate and clamp read from the pickle
    z = torch.randn(2, 64)
    assert torch.equal(_images(source, z), _images(loaded, z))
    unclamped = stylegan2.Generator(SMALL)
    unclamped.load_state_dict(source.state_dict())
    assert not torch.equal(_images(unclamped.eval(), z), _images(loaded, z))  # clamp matters
    assert not marker.exists()  # the pickled module source was never executed
    data = load_network_pickle(path)
    assert sorted(data) == ["D", "G", "G_ema", "augment_pipe", "training_set_kwargs"]
    assert data["G_ema"].class_name == "Generator" and "pathlib" in data["G_ema"].module_src


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Payload(marker)}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        load_network_pickle(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"G_ema": eval}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.eval"):
        load_network_pickle(path)
    path.write_bytes(pickle.dumps({"G_ema": _Payload(marker)}))  # through the registry: 1 line
    with pytest.raises(UserError, match="stylegan2-ffhq: cannot load weights .*refusing"):
        models.load("stylegan2-ffhq", path)
    assert not marker.exists()


def test_stylegan2_generation_is_deterministic_and_truncated_in_w(small_generator):
    z = torch.randn(4, 64)
    images = _images(small_generator, z)
    assert torch.equal(images, _images(small_generator, z))  # const noise, no mixing
    assert images.shape == (4, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    alone = torch.cat([_images(small_generator, z[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(images, alone)  # each image depends on its own z only
    with torch.no_grad():
        assert torch.equal(stylegan2.generate(small_generator, z, None, None), images)  # 0.7
        mean = stylegan2.generate(small_generator, z, None, 0.0)  # every w is w_avg
        assert torch.equal(mean, mean[:1].expand_as(mean))
        assert not torch.equal(_images(small_generator, z, 1.0), images)


def test_stylegan2_upsampling_is_upfirdn2d():
    """The to-RGB skip upsampling equals upfirdn2d's definition: insert zeros, pad (2, 1),
    filter with [1, 3, 3, 1] x [1, 3, 3, 1] / 64 times 4."""
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    k = torch.outer(k, k) / 64 * 4
    zeros = torch.zeros(2, 3, 10, 10, dtype=torch.float64)
    zeros[..., ::2, ::2] = x
    padded = torch.nn.functional.pad(zeros, (2, 1, 2, 1))
    expected = torch.nn.functional.conv2d(padded, k.flip(0, 1).expand(3, 1, 4, 4), groups=3)
    torch.testing.assert_close(stylegan2._depthwise(x, k, pad=0, up=True), expected)
