"""The registry, forward hooks and the shapes zoo's hooked layers."""

import pytest
import torch
from torch import nn

from rosetta_steps import models
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.models.__main__ import main as models_main
from rosetta_steps.models.hooks import capture, tokens_to_map

EXPECTED = {
    "shapes-gan": [("stem.act", 256, 4), ("up1.act", 128, 8), ("up2.act", 64, 16),
                   ("up3.act", 32, 32), ("up4.act", 16, 64)],
    "shapes-cnn-sup": [("layer1", 16, 32), ("layer2", 32, 16), ("layer3", 64, 8),
                       ("layer4", 128, 4)],
    "shapes-cnn-ssl": [("layer1", 16, 32), ("layer2", 32, 16), ("layer3", 64, 8),
                       ("layer4", 128, 4)],
    "shapes-vit-mae": [(f"blocks.{i}.mlp.act", 384, 8) for i in range(4)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_layers_from_a_real_forward_pass(name):
    spec, model = models.load(name, weights=None)
    torch.manual_seed(0)
    x = spec.example_input(batch=3)
    if spec.kind == models.GENERATOR:
        x = spec.latent.sample(seed=0, indices=range(3))
    with torch.no_grad():
        images, maps = spec.run(model, x)
    got = [(k, v.shape[1], v.shape[-1]) for k, v in maps.items()]
    assert got == EXPECTED[name]
    assert all(v.shape[0] == 3 and v.shape[-2] == v.shape[-1] for v in maps.values())
    assert [(s.name, s.channels, s.size) for s in spec.layer_specs()] == EXPECTED[name]
    if spec.kind == models.GENERATOR:
        assert images.shape == (3, 3, 64, 64) and images.abs().max() <= 1
    else:
        assert images is None


def test_hooks_capture_post_activation_values():
    spec, model = models.load("shapes-cnn-sup", weights=None)
    _, maps = spec.run(model, torch.randn(2, 3, 64, 64))
    assert all((m >= 0).all() for m in maps.values())  # after ReLU
    spec, vit = models.load("shapes-vit-mae", weights=None)
    x = torch.randn(2, 3, 64, 64)
    _, maps = spec.run(vit, x)
    # the hooked GELU output, by hand: tokens after fc1 + GELU, class token dropped
    block = vit.blocks[0]
    tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
    hidden = block.mlp.act(block.mlp.fc1(block.norm2(tokens + block.attn(block.norm1(tokens)))))
    torch.testing.assert_close(maps["blocks.0.mlp.act"], tokens_to_map(hidden, 1))


def test_tokens_to_map_drops_prefix_and_keeps_row_major_order():
    patches = torch.arange(2 * 9 * 4, dtype=torch.float32).reshape(2, 9, 4)
    tokens = torch.cat([torch.full((2, 2, 4), -1.0), patches], dim=1)  # 2 prefix tokens
    maps = tokens_to_map(tokens, prefix=2)
    assert maps.shape == (2, 4, 3, 3)
    assert maps[1, 3, 2, 1] == patches[1, 2 * 3 + 1, 3]
    with pytest.raises(ValueError, match="square"):
        tokens_to_map(torch.zeros(1, 9, 4), prefix=1)


def test_stop_ends_the_forward_pass_after_the_last_hooked_layer():
    ran = []
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.ReLU(),
                          nn.Flatten())
    model[4].register_forward_hook(lambda *_: ran.append("head"))
    with capture(model, ["1", "3"], stop=True) as maps:
        model(torch.randn(1, 1, 2, 2))
    assert list(maps) == ["1", "3"] and not ran


def test_inplace_change_after_the_hook_is_an_error():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Tanh(), nn.ReLU(inplace=True))
    with pytest.raises(RuntimeError, match="'1' was modified in place"):
        with capture(model, ["1"]):
            model(torch.randn(1, 1, 2, 2) - 5)


def test_missing_layer_and_unknown_model():
    with pytest.raises(KeyError, match="no module named 'nope'"):
        with capture(nn.Linear(2, 2), ["nope"]):
            pass
    with pytest.raises(UserError, match="unknown model 'resnet9000'; known models: shapes-gan"):
        models.get("resnet9000")


def test_latents_depend_only_on_seed_and_index():
    latent = models.get("shapes-gan").latent
    whole = latent.sample(seed=3, indices=range(6))
    torch.testing.assert_close(whole[4:], latent.sample(seed=3, indices=[4, 5]))
    assert not torch.equal(whole, latent.sample(seed=4, indices=range(6)))
    truncated = models.Latent(dim=256, truncation=0.5).sample(0, range(50))
    assert truncated.abs().max() <= 1.0 and truncated.std() > 0.2


def test_preprocess_resizes_and_normalises():
    pre = models.Preprocess(size=8, resize="bicubic", mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    out = pre(torch.ones(2, 3, 16, 16))
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([2.5, 3.0, 3.5]))


def test_list_command(capsys):
    assert run(models_main, ["list"]) == 0
    out = capsys.readouterr().out
    assert "shapes-vit-mae" in out and "1536" in out and "blocks.3.mlp.act 384@8" in out
    assert run(models_main, ["list", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nope'" in err[0]


def test_missing_or_corrupt_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found; the trained file ships as "
                       "data/zoo/shapes/shapes-gan.safetensors; or train it with: python -m "):
        models.load("shapes-gan", tmp_path / "absent.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(UserError, match="cannot load weights"):
        models.load("shapes-gan", bad)
