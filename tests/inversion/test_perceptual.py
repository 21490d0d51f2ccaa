"""LPIPS: against its definition with AlexNet weights read from torch's cache (a random file
written in torchvision's format), and cleanly absent without that file."""

from __future__ import annotations

from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from rosetta_steps.core.cli import UserError, run
from rosetta_steps.inversion import perceptual
from rosetta_steps.inversion.objective import InversionSettings, reconstruction
from rosetta_steps.inversion.table import image_metrics, inversion_table
from rosetta_steps.invert import main

RELUS = (1, 4, 7, 9, 11)  # AlexNet's five ReLUs in `features`: the layers LPIPS compares
SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64)


@pytest.fixture
def alexnet_file(tmp_path, monkeypatch) -> Path:
    """$TORCH_HOME with torchvision's AlexNet file holding seeded random weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = perceptual.alexnet_weights()
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


@pytest.fixture
def no_alexnet(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))


def _reference(x: torch.Tensor, y: torch.Tensor, alexnet_path: Path) -> torch.Tensor:
    """LPIPS from Zhang et al.'s definition in float64: scale the inputs, take AlexNet's ReLU
    outputs, normalise each pixel's feature vector, weight the squared differences per
    channel with the package's learned v0.1 weights, average over pixels, sum over layers."""
    net = torchvision.models.alexnet()
    net.load_state_dict(torch.load(alexnet_path, weights_only=True))
    features = net.features.double().eval()
    lin = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu",
                     weights_only=True)
    a, b = ((t.double() - SHIFT[:, None, None]) / SCALE[:, None, None] for t in (x, y))
    total = torch.zeros(len(x), dtype=torch.float64)
    layer = 0
    for i, module in enumerate(features):
        a, b = module(a), module(b)
        if i in RELUS:
            na = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            nb = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            w = lin[f"lin{layer}.model.1.weight"].double()
            total += F.conv2d((na - nb) ** 2, w).mean(dim=(1, 2, 3))
            layer += 1
    return total


def test_lpips_follows_its_definition_with_the_cached_alexnet(alexnet_file):
    torch.manual_seed(1)
    x, y = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    got = perceptual.lpips_distance(x, y)
    torch.testing.assert_close(got.double(), _reference(x, y, alexnet_file),
                               rtol=1e-5, atol=1e-7)
    assert got.shape == (2,) and (got > 0).all()
    assert perceptual.lpips_distance(x, x).abs().max() < 1e-7


def test_lpips_reconstruction_loss_has_gradients(alexnet_file):
    torch.manual_seed(2)
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    loss = reconstruction(images, target, "lpips")
    loss.sum().backward()
    assert loss.shape == (2,) and images.grad.abs().sum() > 0


def test_metrics_include_lpips_only_when_asked(alexnet_file):
    """A cached AlexNet file alone does not change the table: LPIPS is a setting."""
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(real + rng.normal(0, 30, real.shape), 0, 255).astype(np.uint8)
    scores = image_metrics(noisy, real, lpips=True)
    assert set(scores) == {"psnr", "ssim", "lpips"} and len(scores["lpips"]) == 3
    assert max(image_metrics(real, real, lpips=True)["lpips"]) < 1e-6 < min(scores["lpips"])
    assert set(image_metrics(noisy, real)) == {"psnr", "ssim"}


def test_lpips_without_the_weights_is_one_line_naming_the_file(no_alexnet, tmp_path, capsys):
    assert not perceptual.alexnet_weights().is_file()
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(UserError, match="alexnet-owt-7be5be79.pth") as err:
        reconstruction(x, x, "lpips")
    assert "\n" not in str(err.value)
    for settings, measure in [(InversionSettings(rec="lpips"), False),
                              (InversionSettings(), True)]:
        with pytest.raises(UserError, match="LPIPS needs"):  # before any model is loaded
            inversion_table("shapes-gan", {}, "c.csv", ["shapes-cnn-sup"], ["b.csv"],
                            ["m.zarr"], 4, 0, settings, 1.0, lpips=measure)
    out = tmp_path / "out"
    status = run(main, ["--gan", "shapes-gan", "--discs", "shapes-cnn-sup", "--concepts",
                        "c.csv", "--bestbuddies", "b.csv", "--matches", "m.zarr", "--rec",
                        "lpips", "--metrics", str(out / "m.json"), "--sheet",
                        str(out / "s.png")])
    assert status != 0 and not out.exists()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "LPIPS needs" in lines[0]
