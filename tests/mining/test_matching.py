"""The match step: real zoo models through hooks into the accumulator, checked by brute force."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rosetta_steps import models, reduce
from rosetta_steps.core import world
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.datasets import FolderDataset
from rosetta_steps.core.images import to_uint8, to_unit_range
from rosetta_steps.core.stores import open_match_store, open_store
from rosetta_steps.match import main as match_main
from rosetta_steps.mining.matching import Block, Pair, accumulate_pass, match_models, mine_shard
from rosetta_steps.mining.sampling import check_finite, sample_images


def seeded(name, seed):
    torch.manual_seed(seed)
    return models.load(name, None)


def brute_force(gan, disc, seed, indices, batch_size):
    """All maps kept, each pair of layers upsampled to the larger size in float64, then the
    global Pearson correlation over images and pixels (Eq. 2), by centring and normalising.

    The models run in the same batches as the step (float32 convolutions round differently
    for different batch sizes); the statistics are computed over all maps at once.
    """
    g_spec, g_model = gan
    parts = []
    with torch.no_grad():
        for lo in indices[::batch_size]:
            z = g_spec.latent.sample(seed, range(lo, min(lo + batch_size, indices.stop)))
            images, g = g_spec.run(g_model, z)
            d = g if disc is None else disc[0].run(disc[1], disc[0].preprocess(images))[1]
            parts.append((g, d))
    return correlate(parts)


def correlate(parts):
    """Eq. 2 over every image of (G maps, D maps) batches, all maps kept (`brute_force`)."""
    g_maps = {k: torch.cat([g[k] for g, _ in parts]) for k in parts[0][0]}
    d_maps = {k: torch.cat([d[k] for _, d in parts]) for k in parts[0][1]}
    rows = []
    for g in g_maps.values():
        row = []
        for d in d_maps.values():
            size = max(g.shape[-1], d.shape[-1])
            units = []
            for m in (g, d):
                up = F.interpolate(m.double(), size=(size, size), mode="bilinear",
                                   align_corners=False)
                flat = up.transpose(0, 1).reshape(m.shape[1], -1)
                flat = flat - flat.mean(1, keepdim=True)
                norm = flat.norm(dim=1, keepdim=True)
                units.append(torch.where(norm > 0, flat / norm, 0.0))
            row.append(units[0] @ units[1].T)
        rows.append(torch.cat(row, dim=1))
    return torch.cat(rows).numpy()


@pytest.mark.parametrize("disc", ["shapes-cnn-sup", "shapes-vit-mae", None])
def test_match_equals_brute_force(disc):
    gan = seeded("shapes-gan", 0)
    d = seeded(disc, 1) if disc else None
    acc = match_models(gan, d, seed=3, indices=range(2, 9), batch_size=3)
    np.testing.assert_allclose(acc.correlation().numpy(), brute_force(gan, d, 3, range(2, 9), 3),
                               rtol=0, atol=1e-10)


def test_a_data_set_is_mined_with_its_anchor_in_gs_role(tmp_path):
    """Images of a folder through the anchor (G's role) and a D: the same correlation as
    brute force on the data set's images, and the sample store holds those images."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, pixels in enumerate(world.render(7, 4).images):
        Image.fromarray(pixels).resize((48 + 8 * i, 64)).save(folder / f"{i:02d}.png")
    data = FolderDataset(folder, size=64)
    anchor, disc = seeded("shapes-cnn-sup", 0), seeded("shapes-vit-mae", 1)
    acc = accumulate_pass(anchor, [Block("shapes-vit-mae", 0, 240)], {"shapes-vit-mae": disc},
                          seed=0, indices=range(1, 7), batch_size=4, data=data)[0]
    parts = []
    with torch.no_grad():
        for lo in (1, 5):
            images = to_unit_range(data.read(range(lo, min(lo + 4, 7))))
            parts.append(tuple(m[0].run(m[1], m[0].preprocess(images))[1]
                               for m in (anchor, disc)))
    np.testing.assert_allclose(acc.correlation().numpy(), correlate(parts), rtol=0, atol=1e-10)

    torch.manual_seed(0)
    mine_shard("shapes-cnn-sup", [Pair("shapes-cnn-ssl", tmp_path / "m.zarr")], {}, seed=0,
               start=2, count=4, batch_size=2, subset="mine", data=data,
               samples=tmp_path / "s.zarr")
    ds = open_store(tmp_path / "s.zarr", "samples", "sample store")
    np.testing.assert_array_equal(ds["pixels"].values, data.read(range(2, 6)))
    assert ds.attrs["dataset"] == "mine" and "latent" not in ds
    assert open_store(tmp_path / "m.zarr", "correlation-state", "shard").attrs["gan"] == \
        "shapes-cnn-sup"
    with pytest.raises(UserError, match="anchor a data set on a discriminative model"):
        mine_shard("shapes-gan", [Pair("shapes-cnn-ssl", tmp_path / "x.zarr")], {}, 0, 0, 2, 2,
                   data=data)
    with pytest.raises(UserError, match="has 7 images .*fewer than the 9 asked for"):
        mine_shard("shapes-cnn-sup", [Pair("shapes-cnn-ssl", tmp_path / "x.zarr")], {}, 0, 5,
                   4, 2, data=data)
    assert not (tmp_path / "x.zarr").exists()


def test_shards_reduce_to_one_pass(tmp_path):
    for start, count in ((0, 4), (4, 3)):
        torch.manual_seed(0)
        args = ["--gan", "shapes-gan", "--disc", "shapes-cnn-ssl", "--seed", "3",
                "--start", str(start), "--count", str(count), "--batch-size", "2",
                "--out", str(tmp_path / f"s{start}.zarr")]
        assert run(match_main, args) == 0
    assert run(reduce.main, [str(tmp_path / "s0.zarr"), str(tmp_path / "s4.zarr"),
                             "--out", str(tmp_path / "m.zarr")]) == 0
    ds = open_match_store(tmp_path / "m.zarr")
    assert ds.attrs["gan"] == "shapes-gan" and ds.attrs["disc"] == "shapes-cnn-ssl"
    assert ds.attrs["n_images"] == 7 and ds["corr"].shape == (496, 240)


def test_bad_input(tmp_path, capsys):
    base = ["--gan", "shapes-gan", "--count", "2", "--out", str(tmp_path / "s.zarr")]
    for extra, message in ((["--disc", "stylegan2-lsun_cat"], "match a generator against"),
                           (["--disc", "shapes-cnn-sup", "--disc", "shapes-gan"],
                            "2 partner(s) and 1 --out"),
                           (["--disc", "shapes-cnn-sup", "--disc", "shapes-cnn-sup",
                             "--out", "t.zarr"], "given twice"),
                           (["--count", "0"], "need count >= 1"),
                           (["--device", "cuda"], "no CUDA GPU is visible"),
                           (["--weights", f"shapes-gan={tmp_path / 'w.safetensors'}"], "not found"),
                           (["--weights", "shapes-cnn-sup=random"], "does not load")):
        assert run(match_main, base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "s.zarr").exists()
    with pytest.raises(UserError, match="not a generator"):
        mine_shard("shapes-cnn-sup", [Pair("shapes-cnn-sup", tmp_path / "x.zarr")], {}, 0, 0, 2,
                   2)


def test_sample_store_lines_up_with_match(tmp_path):
    """A sample shard holds the images the match step sees: same latents, same G output."""
    torch.manual_seed(0)
    gan = models.load("shapes-gan", None)
    ds = sample_images(gan, "all", seed=3, indices=range(5, 9), batch_size=3)
    assert list(ds["image"].values) == [5, 6, 7, 8]
    z = gan[0].latent.sample(3, range(5, 9))
    np.testing.assert_array_equal(ds["latent"].values, z.numpy())
    with torch.no_grad():
        images, maps = gan[0].run(gan[1], z)
    np.testing.assert_array_equal(ds["pixels"].values, to_uint8(images))
    means = torch.cat([m.mean(dim=(2, 3)) for m in maps.values()], dim=1).numpy()
    np.testing.assert_allclose(ds["activation"].values, means, rtol=1e-5, atol=1e-6)
    assert ds.sizes["gan_unit"] == 496 and (ds["class_index"].values == -1).all()
    with pytest.raises(UserError, match="unconditional"):
        sample_images(gan, "briard", seed=3, indices=range(2), batch_size=2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_generators_non_finite_image_is_named_not_stored_black(bad, monkeypatch):
    run = models.ModelSpec.run

    def broken(self, *args, **kwargs):  # a generator whose second image of a batch breaks
        images, maps = run(self, *args, **kwargs)
        images[1, 0, 3, 5] = bad
        return images, maps

    monkeypatch.setattr(models.ModelSpec, "run", broken)
    gan = models.load("shapes-gan", None)
    with pytest.raises(UserError, match=r"shapes-gan's image 6 is not finite"):
        sample_images(gan, "all", seed=3, indices=range(5, 9), batch_size=3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_the_first_bad_unit_and_passes_large_finite_maps(bad):
    maps = {"a": torch.full((2, 3, 4, 4), 3e38), "b": torch.zeros(3, 5, 2, 2)}
    check_finite("D", maps, 10)  # finite, though each sum overflows to inf
    maps["b"][2, 4, 1, 0] = bad
    maps["b"][2, 1, 0, 0] = bad
    with pytest.raises(UserError, match="D layer b unit 1 is not finite on image 12"):
        check_finite("D", maps, 10)
