"""Today's vision models by name hook their own token layouts: each family's MLP activation
of every block, at the map size its patch grid gives, with class and register tokens dropped
(DINOv2/v3) or none to drop (SigLIP), and ConvNeXt's channels-last MLP permuted to maps."""

import pytest
import torch

from rosetta_steps import models
from rosetta_steps.core.cli import run
from rosetta_steps.models.__main__ import main as models_main


def _blocks(prefix: str, count: int, channels: int, size: int) -> list:
    return [(f"{prefix}.{i}.mlp.{'gelu' if 'resblocks' in prefix else 'act'}", channels, size)
            for i in range(count)]


CONVNEXT_T = [(f"stages.{s}.blocks.{b}.mlp.act", 4 * w, 56 >> s)
              for s, (depth, w) in enumerate(zip((3, 3, 9, 3), (96, 192, 384, 768), strict=True))
              for b in range(depth)]

# name: (input size, prefix tokens dropped, hooked layers as (name, channels, map size))
FAMILIES = {
    "timm:vit_base_patch14_reg4_dinov2.lvd142m": (518, 5, _blocks("blocks", 12, 3072, 37)),
    "timm:vit_base_patch16_dinov3": (256, 5, _blocks("blocks", 12, 3072, 16)),
    "timm:vit_base_patch16_siglip_224.v2_webli": (224, 0, _blocks("blocks", 12, 3072, 14)),
    "timm:eva02_base_patch14_224.mim_in22k": (224, 1, _blocks("blocks", 12, 2048, 16)),
    "timm:convnext_tiny.fb_in1k": (224, 0, CONVNEXT_T),
    "open_clip:ViT-B-16/openai": (224, 1, _blocks("transformer.resblocks", 12, 3072, 14)),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_hooks_every_blocks_mlp_at_its_map_size(name):
    size, prefix, expected = FAMILIES[name]
    spec = models.get(name)
    assert spec.preprocess.size == size
    assert [(s.name, s.channels, s.size) for s in spec.layer_specs()] == expected
    with torch.device("meta"):
        assert int(getattr(spec.build(), "num_prefix_tokens", 0)) == prefix


def _raw_outputs(model: torch.nn.Module, layers: list[str], x: torch.Tensor) -> dict:
    modules, raw = dict(model.named_modules()), {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: raw.__setitem__(n, out)) for n in layers]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return raw


def test_registers_are_dropped_and_channels_last_maps_permuted_in_a_real_pass():
    """At random weights: a DINOv2 ViT with 4 registers keeps the 37 x 37 patch tokens after
    its class and register tokens; ConvNeXt's [batch, h, w, C] MLP outputs become maps."""
    spec, model = models.load("timm:vit_small_patch14_reg4_dinov2.lvd142m", "random")
    x = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        _, maps = spec.run(model, x)
    raw = _raw_outputs(model, ["blocks.0.mlp.act"], x)["blocks.0.mlp.act"]
    assert raw.shape[1] == 1 + 4 + 37 * 37 and model.num_prefix_tokens == 5
    expected = raw[:, 5:].transpose(1, 2).reshape(1, -1, 37, 37)
    assert torch.equal(maps["blocks.0.mlp.act"], expected)

    spec, model = models.load("timm:convnext_tiny.fb_in1k", "random")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        _, maps = spec.run(model, x)
    raw = _raw_outputs(model, ["stages.1.blocks.2.mlp.act"], x)["stages.1.blocks.2.mlp.act"]
    assert raw.shape == (1, 28, 28, 768)
    assert torch.equal(maps["stages.1.blocks.2.mlp.act"], raw.permute(0, 3, 1, 2))


def test_models_list_shows_units_and_map_sizes_and_refuses_unknown_names(capsys):
    assert run(models_main, ["list", "timm:vit_base_patch14_reg4_dinov2.lvd142m"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert " 36864 " in line and "blocks.0.mlp.act 3072@37" in line
    assert run(models_main, ["list", "timm:vit_nope_patch14"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "timm:vit_nope_patch14" in err[0]
