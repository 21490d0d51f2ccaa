"""The paper's zoo: hooked layers and units, class names, weights resolution, the CLI, and
the generic timm / open_clip names. Nothing here downloads: the download functions are
replaced by ones that fail as an offline machine does."""

import pytest
import torch

from rosetta_steps import models
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.models import biggan, weights
from rosetta_steps.models.__main__ import main as models_main

RESNET = [("layer1", 256, 56), ("layer2", 512, 28), ("layer3", 1024, 14), ("layer4", 2048, 7)]


def vit(size):
    return [(f"blocks.{i}.mlp.act", 3072, size) for i in range(12)]


def stylegan2(res):
    levels = range(3, res.bit_length())
    channels = {r: min(32768 // r, 512) for r in (2 ** i for i in levels)}
    convs = [(f"convs.{2 * k + j}.activate", channels[2 ** i], 2 ** i)
             for k, i in enumerate(levels) for j in range(2)]
    return convs + [(f"to_rgbs.{k}.conv", 3, 2 ** i) for k, i in enumerate(levels)]


EXPECTED = {"resnet50": RESNET, "dino_rn50": RESNET, "clip_rn50": RESNET,
            "dino_vitb16": vit(14), "dino_vitb8": vit(28), "mae_vitb16": vit(14),
            "stylegan2-lsun_cat": stylegan2(256), "stylegan2-lsun_horse": stylegan2(256),
            "stylegan2-lsun_car": stylegan2(512), "stylegan2-ffhq": stylegan2(1024)}
UNITS = {"resnet50": 3840, "dino_vitb16": 36864, "dino_vitb8": 36864,
         "stylegan2-lsun_cat": 4882, "stylegan2-lsun_car": 5013, "stylegan2-ffhq": 5080,
         "biggan-deep-128": 19264, "biggan-deep-256": 23296, "biggan-deep-512": 23744}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Empty caches under tmp_path, and downloads that fail as without a network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    calls = []

    def no_network(*args):
        calls.append(args)
        raise OSError("no network connection to the test's host")

    monkeypatch.setattr(weights, "_hf_download", no_network)
    monkeypatch.setattr(weights, "_url_download", no_network)
    return calls


def test_every_paper_model_is_registered_with_its_kind():
    paper = [n for n in models.names() if "paper" in models.get(n).tags]
    assert paper == ["resnet50", "dino_rn50", "clip_rn50", "dino_vitb16", "dino_vitb8",
                     "mae_vitb16", "biggan-deep-128", "biggan-deep-256", "biggan-deep-512",
                     "stylegan2-lsun_cat", "stylegan2-lsun_horse", "stylegan2-lsun_car",
                     "stylegan2-ffhq", "stylegan3-ffhq", "stylegan3-afhq",
                     "styleganxl-imagenet256"]
    assert {models.get(n).kind for n in paper[:6]} == {models.DISCRIMINATIVE}
    assert {models.get(n).kind for n in paper[6:]} == {models.GENERATOR}
    assert models.get("clip_rn50").preprocess.mean == pytest.approx((0.4815, 0.4578, 0.4082),
                                                                     abs=1e-4)
    assert models.get("resnet50").preprocess == models.Preprocess(
        224, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hooked_layers_and_units_at_full_size(name):
    specs = models.get(name).layer_specs()  # meta device: shapes only
    assert [(s.name, s.channels, s.size) for s in specs] == EXPECTED[name]
    if name in UNITS:
        assert sum(s.channels for s in specs) == UNITS[name]


@pytest.mark.parametrize("res", [128, 256, 512])
def test_biggan_hooks_every_conv_the_original_hooks(res):
    from pytorch_pretrained_biggan.convert_tf_to_pytorch import BigGAN128, BigGAN256, BigGAN512
    package = {128: BigGAN128, 256: BigGAN256, 512: BigGAN512}[res]
    assert biggan.config(res) == {**package.to_dict(), "layers": [tuple(x) for x in
                                                                  package.layers]}
    spec = models.get(f"biggan-deep-{res}")
    with torch.device("meta"):
        convs = [n for n, _ in spec.build().named_modules() if "conv" in n]
    assert list(spec.layers) == convs
    specs = spec.layer_specs()
    assert [s.name for s in specs] == convs and sum(s.channels for s in specs) == UNITS[spec.name]
    assert (specs[0].channels, specs[0].size) == (512, 4)
    assert (specs[-1].name, specs[-1].channels, specs[-1].size) == ("generator.conv_to_rgb", 128,
                                                                    res)


def test_class_index_by_any_name_or_index():
    spec = models.get("biggan-deep-256")
    # briard is ImageNet class 226 (232 is Border collie)
    assert spec.class_index("briard") == 226
    assert [spec.class_index(n) for n in ("tench", "Goldfish", "church", "espresso")] == \
        [0, 1, 497, 967]
    assert spec.class_index("great_white_shark") == spec.class_index(" Great  White shark") == 2
    assert spec.class_index("church building") == 497 and spec.class_index("207") == 207
    with pytest.raises(UserError) as err:
        spec.class_index("briardd")
    line = str(err.value)
    assert "\n" not in line and "biggan-deep-256" in line and "'briardd'" in line
    assert "did you mean 'briard'" in line
    with pytest.raises(UserError, match="ambiguous: 134 .*517"):
        spec.class_index("crane")
    with pytest.raises(UserError, match="out of range"):
        spec.class_index("1000")
    for name in ("stylegan2-lsun_cat", "shapes-gan"):
        with pytest.raises(UserError, match=f"{name} is not class-conditional"):
            models.get(name).class_index("cat")


def test_latents_of_the_paper_generators():
    big = models.get("biggan-deep-256").latent
    z = big.sample(0, range(4), truncation=0.4)
    assert z.shape == (4, 128) and z.abs().max() <= 0.8 and big.num_classes == 1000
    style = models.get("stylegan2-ffhq").latent
    assert style.truncation == 0.7 and style.space == "w"
    # truncation acts in W: z stays the plain normal whatever truncation is asked for
    torch.testing.assert_close(style.sample(0, range(3), 0.5), style.sample(0, range(3)))
    assert style.sample(0, range(64)).abs().max() > 2


def test_offline_missing_weights_is_one_line_naming_model_file_and_place(offline, tmp_path):
    with pytest.raises(UserError) as err:
        models.load("resnet50")
    line = str(err.value)
    assert "\n" not in line and line.startswith("resnet50: ")
    assert "model.safetensors" in line and "timm/resnet50.tv_in1k" in line
    assert str(tmp_path / "hf" / "hub") in line
    assert "python -m rosetta_steps.models fetch resnet50" in line
    with pytest.raises(UserError) as err:
        models.load("dino_rn50")
    line = str(err.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "dino_resnet50_pretrain.pth") in line
    assert "no network" in line and len(offline) == 2  # no network: one attempt each
    with pytest.raises(UserError, match="stylegan2-cat-config-f.pt .*put the file there"):
        models.load("stylegan2-lsun_cat")


def test_random_weights_on_request_never_download(offline):
    spec, model = models.load("dino_rn50", pretrained=False)
    assert spec.name == "dino_rn50" and not model.training
    _, again = models.load("dino_rn50", "random")
    assert torch.equal(model.conv1.weight, again.conv1.weight)  # seeded: one model per run
    assert offline == []


def test_weights_found_in_the_torch_and_hub_caches(offline, tmp_path):
    _, source = models.load("dino_rn50", pretrained=False)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(source.state_dict(), checkpoints / "dino_resnet50_pretrain.pth")
    _, model = models.load("dino_rn50")
    assert torch.equal(model.layer3[0].conv2.weight, source.layer3[0].conv2.weight)
    # the Hugging Face cache layout: models--org--name/{refs/main, snapshots/<rev>/file}
    from safetensors.torch import save_file
    _, resnet = models.load("resnet50", pretrained=False)
    repo = tmp_path / "hf" / "hub" / "models--timm--resnet50.tv_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    save_file(resnet.state_dict(), repo / "snapshots" / "abc123" / "model.safetensors")
    _, loaded = models.load("resnet50")
    assert torch.equal(loaded.fc.weight, resnet.fc.weight) and offline == []


def test_list_shows_weights_and_fetch_fails_in_one_line(offline, tmp_path, capsys):
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "dino_resnet50_pretrain.pth").write_bytes(b"x")
    assert run(models_main, ["list", "shapes-gan", "dino_rn50", "resnet50"]) == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"shapes-gan": "-", "dino_rn50": "cached", "resnet50": "missing"}
    assert run(models_main, ["fetch", "clip_rn50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip_rn50: pretrained weights not cached" in err[0]
    assert "open_clip_model.safetensors" in err[0]
    assert run(models_main, ["fetch", "shapes-gan"]) == 2
    assert "no published weights" in capsys.readouterr().err


def test_generic_timm_and_open_clip_names_hook_post_activation_outputs():
    r18 = models.get("timm:resnet18")
    assert [(s.name, s.channels, s.size) for s in r18.layer_specs()] == [
        ("act1", 64, 112), ("layer1.1.act2", 64, 56), ("layer2.1.act2", 128, 28),
        ("layer3.1.act2", 256, 14), ("layer4.1.act2", 512, 7)]
    assert r18.source.options[0][0].repo_id.startswith("timm/resnet18.")
    tiny = models.get("timm:vit_tiny_patch16_224.augreg_in21k")
    assert [(s.name, s.channels, s.size) for s in tiny.layer_specs()] == [
        (f"blocks.{i}.mlp.act", 768, 14) for i in range(12)]
    atto = models.get("timm:convnext_atto")  # its MLP is 1x1 convs: maps, every block's
    assert [s.name for s in atto.layer_specs()][:3] == [
        "stages.0.blocks.0.mlp.act", "stages.0.blocks.1.mlp.act", "stages.1.blocks.0.mlp.act"]
    assert len(atto.layer_specs()) == 2 + 2 + 6 + 2 and not atto.channels_last
    clip = models.get("open_clip:RN50/openai")
    assert [(s.name, s.channels, s.size) for s in clip.layer_specs()] == [
        ("layer1.2.act3", 256, 56), ("layer2.3.act3", 512, 28), ("layer3.5.act3", 1024, 14),
        ("layer4.2.act3", 2048, 7)]
    assert clip.preprocess.mean == models.get("clip_rn50").preprocess.mean
    for bad in ("timm:not_a_model", "open_clip:RN50/no_such_tag"):
        with pytest.raises(UserError, match=bad.split(":")[0]):
            models.get(bad)
    assert "timm:resnet18" not in models.names()


def test_random_weights_are_the_same_in_every_load():
    """Steps run in separate processes: a model at random weights must be one model."""
    before = torch.random.get_rng_state()
    a = models.load("shapes-cnn-sup", "random")[1].state_dict()
    b = models.load("shapes-cnn-sup", "random")[1].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
