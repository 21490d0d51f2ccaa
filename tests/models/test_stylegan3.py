"""StyleGAN3 and StyleGAN-XL: the building blocks against their definitions, the registered
generators' hooked layers at their real configurations, generation, and NVIDIA's network
pickles through the real loader (written in the official structure by `upstream_formats`)."""

import os
import pickle
from dataclasses import replace
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from upstream_formats import nvidia_stylegan3_pickle

from rosetta_steps import models
from rosetta_steps.core.cli import UserError
from rosetta_steps.models import alias_free, stylegan3, styleganxl
from rosetta_steps.models.checkpoints import load_generator

SMALL3 = stylegan3.StyleGAN3Config(resolution=32, z_dim=16, w_dim=16, channel_base=256,
                                   channel_max=32, num_layers=6)
SMALL_XL = styleganxl.StyleGANXLConfig(
    resolution=32, head_layers=4, num_classes=10, embed_dim=12,
    stem=stylegan3.StyleGAN3Config(resolution=16, z_dim=8, w_dim=16, num_layers=5,
                                   channel_base=256, channel_max=32, conv_kernel=3,
                                   radial=False))


def _operator(f: torch.Tensor, n: int, up: int, down: int, pad: tuple[int, int]) -> torch.Tensor:
    """The dense matrix of upfirdn along one axis, entry by entry from its definition:
    output m = sum_n x[n] f[q - m] where q = n*up + pad0 is x[n]'s place in the padded,
    upsampled signal (true convolution), then every `down`-th m."""
    k = len(f)
    length = n * up + pad[0] + pad[1] - k + 1
    a = torch.zeros(length, n, dtype=torch.float64)
    for m in range(length):
        for i in range(n):
            j = i * up + pad[0] - m
            if 0 <= j < k:
                a[m, i] = f[k - 1 - j]
    return a[::down]


def _reference(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    x = x.double() + b.double()[None, :, None, None]
    n = x.shape[-1]
    u = _operator(fu.double() * up, n, up, 1, padding[:2])
    x = torch.einsum("mi,bcij,nj->bcmn", u, x, u)
    x = (F.leaky_relu(x, slope) * gain).clamp(-clamp, clamp)
    if fd.ndim == 1:
        d = _operator(fd.double(), x.shape[-1], 1, down, (0, 0))
        return torch.einsum("mi,bcij,nj->bcmn", d, x, d)
    k = fd.shape[0]  # 2-D filter: every output pixel as an explicit weighted window sum
    out = torch.zeros(*x.shape[:2], (x.shape[2] - k) // down + 1, (x.shape[3] - k) // down + 1,
                      dtype=torch.float64)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * down:i * down + k, j * down:j * down + k]
            out[:, :, i, j] = (window * fd.double().flip(0, 1)).sum(dim=(2, 3))
    return out


@pytest.mark.parametrize("cfg,index", [(stylegan3.StyleGAN3Config(512), 3),
                                       (stylegan3.StyleGAN3Config(512), 11),
                                       (stylegan3.StyleGAN3Config(256, conv_kernel=3,
                                                                  radial=False), 5)])
def test_filtered_lrelu_is_upsample_activate_downsample(cfg, index):
    """Real layers (R's radial and T's separable downsampling filters, their padding) on
    small maps, against dense operators built from upfirdn's definition in float64."""
    full = stylegan3.layer_plan(cfg)[index]
    spec = replace(full, in_size=9, out_size=9 * full.up // full.down)
    layer = stylegan3.SynthesisLayer(spec, 4)
    assert layer.up_filter.ndim == 1 and spec.up >= 2
    assert layer.down_filter.ndim == (2 if spec.radial and not spec.is_critically_sampled else 1)
    torch.manual_seed(0)
    x, b = torch.randn(2, 3, 9, 9), torch.randn(3)
    args = (layer.up_filter, layer.down_filter, b, spec.up, spec.down, spec.padding, 1.4, 0.2,
            2.0)
    ours = alias_free.filtered_lrelu(x, *args)
    ref = _reference(x, *args)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)
    assert ours.abs().max() > 0.1 and (ref.abs() >= 2 * 0.999).any() == (ours.abs() >= 1.998).any()


def test_filtered_lrelu_sizes_follow_the_layer_plan():
    for cfg in (stylegan3.StyleGAN3Config(1024), stylegan3.StyleGAN3Config(16, num_layers=11)):
        for spec in stylegan3.layer_plan(cfg)[:-1]:
            layer = stylegan3.SynthesisLayer(spec, 4)
            side = spec.in_size + spec.kernel - 1  # the modulated convolution's output
            with torch.device("meta"):
                x = torch.zeros(1, 1, side, side)
                y = alias_free.filtered_lrelu(x, layer.up_filter.to("meta"),
                                             None if layer.down_filter is None
                                             else layer.down_filter.to("meta"),
                                             torch.zeros(1), spec.up, spec.down, spec.padding,
                                             1.0, 0.2, None)
            assert y.shape[-1] == spec.out_size, spec.name


def test_modulated_conv_is_the_per_sample_convolution_it_replaces():
    torch.manual_seed(0)
    x, weight = torch.randn(3, 5, 8, 8), torch.randn(4, 5, 3, 3)
    styles, gain = torch.randn(3, 5), torch.tensor(0.7)
    for demodulate in (True, False):
        fused = alias_free.modulated_conv2d(x, weight, styles, demodulate, padding=2,
                                           input_gain=gain)
        for i in range(3):
            w = weight * styles[i][None, :, None, None]
            if demodulate:
                w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).sqrt()
            ref = F.conv2d(x[i:i + 1] * gain, w, padding=2)
            torch.testing.assert_close(fused[i:i + 1], ref, atol=1e-4, rtol=1e-4)


def _names(cfg_layers):
    return [s.name for s in cfg_layers]


def test_registered_generators_hook_the_original_layers_at_full_size():
    ffhq = models.get("stylegan3-ffhq").layer_specs()  # meta device: shapes only
    assert [(s.name, s.channels, s.size) for s in ffhq][:3] == [
        ("synthesis.input", 1024, 36), ("synthesis.L0_36_1024", 1024, 36),
        ("synthesis.L1_36_1024", 1024, 36)]
    assert [s.name for s in ffhq][-6:] == [  # NVIDIA's names for stylegan3-r-ffhqu-1024
        "synthesis.L9_532_256", "synthesis.L10_1044_161", "synthesis.L11_1044_102",
        "synthesis.L12_1044_64", "synthesis.L13_1024_64", "synthesis.L14_1024_3"]
    assert (ffhq[-1].channels, ffhq[-1].size) == (3, 1024) and len(ffhq) == 16
    assert sum(s.channels for s in ffhq) == 9893
    afhq = models.get("stylegan3-afhq").layer_specs()
    assert [s.name for s in afhq][-3:] == ["synthesis.L12_532_128", "synthesis.L13_512_128",
                                           "synthesis.L14_512_3"]
    assert sum(s.channels for s in afhq) == 10973
    stem = models.get("styleganxl-imagenet16").layer_specs()  # names users of the release see
    assert [s.name for s in stem][1:4] == ["synthesis.input", "synthesis.L0_36_1024",
                                           "synthesis.L1_36_1024"]
    assert [s.name for s in stem][-2:] == ["synthesis.L9_16_1024", "synthesis.L10_16_3"]
    xl = models.get("styleganxl-imagenet256").layer_specs()
    assert [(s.name, s.channels, s.size) for s in xl][:3] == [
        ("synthesis", 3, 256), ("synthesis.input", 1024, 36), ("synthesis.L0_36_1024", 1024, 36)]
    names = [s.name for s in xl]
    assert names[9:11] == ["synthesis.L7_36_1024", "synthesis.L9_36_1024"]  # L8 cut with stem
    assert names[-2:] == ["synthesis.L30_256_256", "synthesis.L31_256_3"] and len(xl) == 33
    assert sum(s.channels for s in xl) == 26434
    for name in ("stylegan3-ffhq", "stylegan3-afhq", "styleganxl-imagenet16",
                 "styleganxl-imagenet256"):
        spec = models.get(name)
        with torch.device("meta"):
            hookable = [n for n, _ in spec.build().named_modules()
                        if "synthesis" in n and "affine" not in n]
        if name.startswith("stylegan3"):  # the original: "synthesis." in the name
            hookable.remove("synthesis")
        assert list(spec.layers) == hookable
    spec = models.get("styleganxl-imagenet256")
    assert spec.class_index("briard") == 226 and spec.latent.num_classes == 1000
    assert (spec.latent.dim, spec.latent.truncation, spec.latent.space) == (64, 0.7, "w")


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    g3 = stylegan3.Generator(SMALL3).eval()
    gxl = styleganxl.GeneratorXL(SMALL_XL).eval()
    with torch.no_grad():
        for g in (g3, gxl):
            g.mapping.w_avg.normal_()
            for name in g.synthesis.layer_names:
                getattr(g.synthesis, name).bias.normal_(std=0.3)
                getattr(g.synthesis, name).magnitude_ema.uniform_(0.5, 2)
    return g3, gxl


def test_generation_is_deterministic_in_range_and_truncated_per_class(small):
    g3, gxl = small
    z = torch.randn(3, 16)
    with torch.no_grad():
        images = stylegan3.generate(g3, z, None, None)
        assert torch.equal(images, stylegan3.generate(g3, z, None, 0.7))
        assert images.shape == (3, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
        alone = torch.cat([stylegan3.generate(g3, z[i:i + 1], None, None) for i in range(3)])
        torch.testing.assert_close(images, alone, atol=1e-5, rtol=1e-5)
        mean = stylegan3.generate(g3, z, None, 0.0)  # every w is w_avg
        torch.testing.assert_close(mean, mean[:1].expand_as(mean))
        zx, y = torch.randn(4, 8), torch.tensor([3, 3, 7, 7])
        xl_images = styleganxl.generate(gxl, zx, y, None)
        assert torch.equal(xl_images, styleganxl.generate(gxl, zx, y, None))
        centre = styleganxl.generate(gxl, zx, y, 0.0)  # each image is its class's mean w
        torch.testing.assert_close(centre[0], centre[1])
        assert not torch.allclose(centre[1], centre[2])
        assert not torch.equal(styleganxl.generate(gxl, zx, y, 1.0), xl_images)
    with pytest.raises(UserError, match="class-conditional"):
        styleganxl.generate(gxl, zx, None, None)


def _spec(name, cfg, module):
    build = stylegan3.Generator if module is stylegan3 else styleganxl.GeneratorXL
    plan = module.layer_names(cfg)
    conditional = module is styleganxl
    return models.ModelSpec(
        name=name, kind=models.GENERATOR, objective="-", build=partial(build, cfg),
        layers=plan, generate=module.generate, load_weights=load_generator,
        latent=models.Latent(dim=(cfg.stem if conditional else cfg).z_dim, truncation=0.7,
                             num_classes=cfg.num_classes if conditional else 0, space="w"))


@pytest.mark.parametrize("which", ["stylegan3", "styleganxl"])
def test_official_pickle_loads_back_without_running_its_code(which, small, tmp_path):
    gen = small[0] if which == "stylegan3" else small[1]
    cfg, module = (SMALL3, stylegan3) if which == "stylegan3" else (SMALL_XL, styleganxl)
    marker, path = tmp_path / "executed.txt", tmp_path / "network-snapshot.pkl"
    nvidia_stylegan3_pickle(gen, path, marker)
    spec = _spec("small", cfg, module)
    torch.manual_seed(5)  # other random weights, all replaced by the file's
    loaded = spec.load_weights(spec.build(), path)
    z = spec.latent.sample(0, range(2))
    y = torch.tensor([4, 9]) if which == "styleganxl" else None
    with torch.no_grad():
        images, maps = spec.run(gen, z, y)
        again, maps_again = spec.run(loaded, z, y)
    assert torch.equal(images, again) and list(maps) == list(spec.layers)
    assert all(torch.equal(maps[k], maps_again[k]) for k in maps)
    assert not marker.exists()  # the pickled module source was never executed
    with pytest.raises(UserError) as err:  # through the registry, into the real model
        models.load("styleganxl-imagenet256" if which == "styleganxl" else "stylegan3-afhq",
                    path)
    line = str(err.value)
    assert "\n" not in line and "cannot load weights" in line and "not this model's" in line


def test_registered_stylegan3_loads_its_full_size_pickle(tmp_path):
    _, source = models.load("stylegan3-afhq", "random")
    with torch.no_grad():
        source.synthesis.L3_52_1024.bias.normal_()
        source.mapping.w_avg.normal_()
    nvidia_stylegan3_pickle(source, tmp_path / "afhq.pkl", tmp_path / "executed.txt")
    _, loaded = models.load("stylegan3-afhq", tmp_path / "afhq.pkl")
    a, b = source.state_dict(), loaded.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "executed.txt").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_in_one_line(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Payload(marker)}))
    for name in ("stylegan3-ffhq", "styleganxl-imagenet256"):
        with pytest.raises(UserError) as err:
            models.load(name, path)
        line = str(err.value)
        assert "\n" not in line and line.startswith(f"{name}: cannot load weights")
        assert "refusing to load" in line and "system" in line
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"G_ema": {"not": "a network"}}))
    with pytest.raises(UserError, match="not an NVIDIA network pickle"):
        models.load("stylegan3-ffhq", path)


def test_missing_weights_name_the_download_and_the_expected_file(monkeypatch, tmp_path):
    from rosetta_steps.models import weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args):
        raise OSError("no network connection to the test's host")

    monkeypatch.setattr(weights, "_url_download", no_network)
    with pytest.raises(UserError) as err:
        models.load("styleganxl-imagenet256")
    line = str(err.value)
    assert "\n" not in line and "not cached" in line
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "stylegan_xl" / "imagenet256.pkl") \
        in line


@pytest.mark.slow
@pytest.mark.parametrize("name,res", [("stylegan3-afhq", 512), ("styleganxl-imagenet256", 256)])
def test_registered_generators_generate_at_their_real_configuration(name, res):
    """One image at full size with random weights (about 40 s for AFHQ and 50 s for
    StyleGAN-XL on two CPU cores: the alias-free layers filter 2x-upsampled maps). FFHQ's
    1024 px run takes 2.5 minutes and is left out to keep the suite's budget; its layer
    shapes are checked without a forward pass."""
    spec, model = models.load(name, "random")
    y = torch.tensor([spec.class_index("briard")]) if spec.latent.num_classes else None
    with torch.no_grad():
        images, maps = spec.run(model, spec.latent.sample(0, range(1)), y)
    assert images.shape == (1, 3, res, res) and torch.isfinite(images).all()
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    assert [(k, m.shape[1], m.shape[-1]) for k, m in maps.items()] == [
        (s.name, s.channels, s.size) for s in spec.layer_specs()]
    last = maps[spec.layers[-1]]  # ToRGB: the image before output scale and clamp
    torch.testing.assert_close(images, (last * 0.25).clamp(-1, 1))


def test_plain_model_classes_become_records_and_others_are_refused(tmp_path):
    """StyleGAN-XL's pickle also holds its projected discriminator (timm networks), pickled
    by class name: such objects are rebuilt as inert records, their classes never imported;
    a class of any other module is still refused."""
    import sys
    import types

    from rosetta_steps.models.unpickle import ModuleRecord, load_network_pickle
    for module, expect in (("timm.models.fake_net", None), ("mypkg_nets", "refusing")):
        fake = types.ModuleType(module)
        net = type("Net", (), {"__module__": module})
        fake.Net = net
        sys.modules[module] = fake
        try:
            obj = net()
            obj.width = 7
            path = tmp_path / f"{module}.pkl"
            path.write_bytes(pickle.dumps({"D": obj}, protocol=4))
        finally:
            del sys.modules[module]
        if expect is None:
            record = load_network_pickle(path)["D"]
            assert isinstance(record, ModuleRecord) and record.class_name == f"{module}.Net"
            assert record.state["width"] == 7
        else:
            with pytest.raises(pickle.UnpicklingError, match=f"refusing to load {module}.Net"):
                load_network_pickle(path)
        assert module not in sys.modules  # the record's class was never imported
