"""Image data sets: a folder read in sorted path order, centre-cropped and resized, its file
list and the check of a shard against it, the shapes world's images, the sample step reading
them, and one-line refusals."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image, ImageOps

from rosetta_steps import sample
from rosetta_steps.core import world
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.datasets import FolderDataset, WorldDataset, check_listing, dataset
from rosetta_steps.core.stores import open_store


def _write(path, colour, size=(40, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    _write(root / "b" / "2.png", (0, 0, 255))
    _write(root / "a.png", (255, 0, 0))
    _write(root / "b" / "10.png", (0, 255, 0))
    (root / "notes.txt").write_text("not an image")
    return root


def test_images_come_in_sorted_relative_path_order_cropped_and_resized(folder):
    data = FolderDataset(folder, size=8)
    assert [p.relative_to(folder).as_posix() for p in data.files] == [
        "a.png", "b/10.png", "b/2.png"]  # sorted as strings: b/10 before b/2
    images = data.read([2, 0])
    assert images.shape == (2, 8, 8, 3) and images.dtype == np.uint8
    assert images[0, 4, 4].tolist() == [0, 0, 255] and images[1, 4, 4].tolist() == [255, 0, 0]
    assert np.array_equal(data.read([2, 0], workers=3), images)  # threads keep the order
    stat = (folder / "a.png").stat()
    assert data.listing().splitlines()[0] == f"a.png\t{stat.st_size}\t{stat.st_mtime_ns}"
    assert FolderDataset(folder, glob="b/*.png").files[0].name == "10.png"


def test_a_centre_crop_keeps_the_middle_of_a_wide_image(tmp_path):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 200  # the middle third
    Image.fromarray(wide).save(tmp_path / "w.png")
    got = FolderDataset(tmp_path, size=10).read([0])[0]
    assert (got == 200).all()


@pytest.mark.parametrize("make, message", [
    (lambda root: FolderDataset(root / "nope"), "data set folder .*nope not found"),
    (lambda root: FolderDataset(root, glob="*.JPEG"), r"no image files in .* match \*\.JPEG"),
])
def test_a_missing_folder_or_empty_glob_stops_with_one_line(folder, make, message):
    with pytest.raises(UserError, match=message):
        assert make(folder).files


def test_fewer_files_than_asked_or_a_broken_image_stop_with_one_line(folder):
    data = FolderDataset(folder, size=8)
    with pytest.raises(UserError, match="has 3 images .*fewer than the 5 asked for"):
        data.check_count(5)
    with pytest.raises(UserError, match="fewer than the 4 asked for"):
        data.read([3])
    png = (folder / "a.png").read_bytes()
    (folder / "a.png").write_bytes(png[: len(png) // 2])  # truncated
    with pytest.raises(UserError, match="cannot read image .*a.png") as err:
        FolderDataset(folder, size=8).read([0])
    assert "\n" not in str(err.value)
    (folder / "c.jpg").write_text("text, not a JPEG")
    with pytest.raises(UserError, match="cannot read image .*c.jpg"):
        FolderDataset(folder, size=8).read([3])


def test_the_world_data_set_is_the_worlds_images_and_declarations_are_checked(tmp_path):
    got = WorldDataset(seed=3).read([5, 1])
    expected = world.render(6, 3).images
    assert np.array_equal(got, expected[[5, 1]])
    assert isinstance(dataset({"world": "shapes"}), WorldDataset)
    assert dataset({"folder": str(tmp_path), "size": 16}).size == 16
    with pytest.raises(UserError, match="a data set is"):
        dataset({"url": "x"})


def test_a_shard_is_checked_against_the_listing_the_workflow_planned(folder):
    data = FolderDataset(folder, size=8)
    planned = data.listing(1, 3)
    stats = [(folder / name).stat() for name in ("b/10.png", "b/2.png")]
    assert planned == "".join(f"{name}\t{s.st_size}\t{s.st_mtime_ns}\n"
                              for name, s in zip(("b/10.png", "b/2.png"), stats, strict=True))
    check_listing(data, planned, 1, 3)  # unchanged: no error
    _write(folder / "b" / "10.png", (0, 255, 0), size=(41, 20))  # same name, another size
    with pytest.raises(UserError, match=r"changed since the run was planned \(image 1: "
                       r"b/10.png of \d+ bytes modified at \d+ ns where the plan had b/10.png "
                       r"of \d+ bytes modified at \d+ ns\)"):
        check_listing(FolderDataset(folder, size=8), planned, 1, 3)
    _write(folder / "b" / "0.png", (9, 9, 9))  # sorts first in b/: shifts the shard
    with pytest.raises(UserError, match="image 1: b/0.png"):
        check_listing(FolderDataset(folder, size=8), planned, 1, 3)


def test_the_steps_read_a_data_set_and_refuse_a_bad_one_in_one_line(folder, tmp_path, capsys):
    declaration = json.dumps({"folder": str(folder), "size": 16})
    out = tmp_path / "s.zarr"
    base = ["--anchor", "shapes-cnn-sup", "--start", "0", "--count", "3", "--batch-size", "2",
            "--device", "cpu", "--out", str(out)]
    listing = tmp_path / "listing.tsv"
    listing.write_text(FolderDataset(folder).listing(0, 3))
    assert run(sample.main, [*base, "--dataset", f"mine={declaration}",
                             "--listing", str(listing)]) == 0
    ds = open_store(out, "samples", "sample store")
    assert ds.attrs["dataset"] == ds.attrs["subset"] == "mine"
    assert "latent" not in ds and list(ds["image"].values) == [0, 1, 2]
    np.testing.assert_array_equal(ds["pixels"].values, FolderDataset(folder, size=16).read(
        [0, 1, 2]))
    shutil.rmtree(out)
    capsys.readouterr()
    listing.write_text(FolderDataset(folder).listing(0, 2))
    for extra, message in (
            (["--dataset", "mine"], "--dataset takes NAME=JSON"),
            (["--dataset", "mine=[1]"], "--dataset takes NAME=JSON"),
            (["--dataset", f"mine={declaration}", "--listing", str(listing)],
             "changed since the run was planned (image 2"),
            (["--dataset", f"mine={declaration}", "--listing", str(tmp_path / "none.tsv")],
             "cannot read --listing"),
            (["--listing", str(listing)], "give --dataset too"),
            (["--dataset", json.dumps({"folder": str(tmp_path / "nope")}).join(["m=", ""])],
             "data set folder"),
            (["--dataset", f"mine={declaration}", "--count", "9"], "fewer than the 9 asked"),
            (["--dataset", f"mine={declaration}", "--anchor", "shapes-gan"],
             "anchor a data set on a discriminative model")):
        assert run(sample.main, [*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not out.exists()


def test_a_file_rewritten_in_place_with_the_same_size_changes_the_listing(tmp_path):
    """Issue 41's reproduction in small: same byte count, other pixels, and a link pointed at
    another file of the same size."""
    folder = tmp_path / "bmp"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(folder / f"{i}.bmp")
    Image.new("RGB", (16, 16), (0, 0, 200)).save(tmp_path / "other.bmp")
    (folder / "3.bmp").symlink_to(folder / "0.bmp")
    planned = FolderDataset(folder, size=8).listing()
    size = (folder / "1.bmp").stat().st_size
    Image.new("RGB", (16, 16), (0, 255, 0)).save(folder / "1.bmp")  # rewritten in place
    os.utime(folder / "1.bmp", ns=(1, 10**18))  # surely not the time of the first write
    assert (folder / "1.bmp").stat().st_size == size
    with pytest.raises(UserError, match="image 1: 1.bmp of"):
        check_listing(FolderDataset(folder, size=8), planned, 0, 4)
    planned = FolderDataset(folder, size=8).listing()
    (folder / "3.bmp").unlink()
    (folder / "3.bmp").symlink_to(tmp_path / "other.bmp")  # the same size, another picture
    os.utime(tmp_path / "other.bmp", ns=(1, 2 * 10**18))
    with pytest.raises(UserError, match="image 3: 3.bmp of"):
        check_listing(FolderDataset(folder, size=8), planned, 0, 4)


def test_an_image_over_pillows_limit_is_refused_by_its_header(folder, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # the folder's images are 40 x 20
    with pytest.raises(UserError, match=r"cannot read image .*a\.png: 40 x 20 pixels, over "
                       r"Pillow's limit of 600"):
        FolderDataset(folder, size=8).read([0])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # over twice it: Pillow's own refusal
    with pytest.raises(UserError, match=r"cannot read image .*a\.png: Image size \(800 pixels\)"):
        FolderDataset(folder, size=8).read([0])


def test_an_absolute_glob_and_a_name_that_is_not_utf8_are_one_line(folder):
    with pytest.raises(UserError, match="glob /data/.*png is absolute: give it relative"):
        _ = FolderDataset(folder, glob="/data/**/*.png").files
    (folder / os.fsdecode(b"b/\xff.png")).write_bytes((folder / "a.png").read_bytes())
    with pytest.raises(UserError, match=r"the file name .*\\udcff\.png' is not valid UTF-8"):
        _ = FolderDataset(folder).files


def test_images_are_read_as_a_viewer_shows_them(tmp_path):
    """16-bit and float grey scaled by their range, EXIF orientation applied, transparency
    composited on white (issue 41's reproductions, and a palette image with a transparent
    index besides); a float image outside [0, 1] is one line."""
    folder = tmp_path / "viewer"
    folder.mkdir()
    ramp = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16  # 0 .. 65520
    Image.fromarray(ramp).save(folder / "a-grey16.png")
    Image.fromarray((ramp / 65535).astype(np.float32), "F").save(folder / "b-float.tif")
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # red left half, then turned by EXIF orientation 6
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    Image.fromarray(wide).save(folder / "c-turned.png", exif=exif)
    hidden = np.zeros((8, 8, 4), np.uint8)
    hidden[..., 1] = 255  # green under alpha 0: nobody sees it
    Image.fromarray(hidden, "RGBA").save(folder / "d-rgba.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0])
    palette.save(folder / "e-palette.png", transparency=1)
    data = FolderDataset(folder, size=64)
    grey16, grey_float = data.read([0])[0], data.read([1])[0]
    expected = np.round(ramp / 257).astype(np.uint8)
    assert grey16.shape == (64, 64, 3) and (grey16[..., 0] == expected).all()
    assert np.abs(grey_float[..., 0].astype(int) - expected).max() <= 1
    upright = np.asarray(ImageOps.exif_transpose(Image.open(folder / "c-turned.png")))
    assert upright.shape == (40, 20, 3) and (upright[:20] == (255, 0, 0)).all()
    turned = FolderDataset(folder, size=20).read([2])[0]  # the middle 20 rows of the upright
    assert (turned[:9, :, 0] > 200).all() and (turned[11:, :, 0] < 50).all()  # red on top
    assert (data.read([3])[0] == 255).all() and (data.read([4])[0] == 255).all()

    Image.fromarray(np.full((8, 8), 3.5, np.float32), "F").save(folder / "f-bad.tif")
    with pytest.raises(UserError, match=r"f-bad.tif: its F pixels span 3.5..3.5, outside 0..1"):
        FolderDataset(folder, size=64).read([5])


def test_links_that_lead_to_no_image_are_counted_and_named(folder, tmp_path):
    """Dangling links and link loops among the candidates, and links to folders the walk does
    not enter, are skipped and said; a link to a file, or to a folder a glob enters, is read."""
    _write(tmp_path / "elsewhere" / "c.png", (1, 2, 3))
    (folder / "gone.png").symlink_to("nothing.png")
    (folder / "b" / "self.PNG").symlink_to("self.PNG")
    (folder / "b" / "a-again.png").symlink_to("../a.png")
    (folder / "linked").symlink_to(tmp_path / "elsewhere")
    (folder / "gone.txt").symlink_to("nothing.txt")  # not an image name: not a candidate
    data = FolderDataset(folder)
    assert [p.relative_to(folder).as_posix() for p in data.files] == [
        "a.png", "b/10.png", "b/2.png", "b/a-again.png"]
    assert data.skipped == (("b/self.PNG", "loop"), ("gone.png", "dangling"),
                            ("linked", "folder"))
    assert data.skipped_note() == (
        f"skipped 3 links under {folder} that lead to no image file: 1 dangling (gone.png); "
        "1 in a loop (b/self.PNG); 1 to a folder, not entered (linked)")
    entered = FolderDataset(folder, "*/*.png")  # a glob that enters the linked folder
    assert "linked/c.png" in [p.relative_to(folder).as_posix() for p in entered.files]
    assert entered.skipped == () and entered.skipped_note() == ""
    assert FolderDataset(folder, "*.png").skipped == (("gone.png", "dangling"),)
    assert FolderDataset(folder, "**/*.png").skipped == (("gone.png", "dangling"),
                                                        ("linked", "folder"))
