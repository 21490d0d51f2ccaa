"""Image data sets for dictionaries anchored on images instead of a generator (issue 19).

A data set is declared once in params.yaml: a folder of image files (`folder`, `glob`), or the
shapes world's real images (`world: shapes`, which come with masks). Image i of a folder is
the i-th file in sorted relative-path order, decoded with Pillow as an image viewer shows it
(EXIF orientation applied, 16-bit and floating-point grey scaled to 8 bits, transparency on
white), centre-cropped to a square and resized to the data set's working size; each model then
applies its own preprocessing. `listing` is the folder's file list (relative paths, sizes and
modification times): the workflow
keeps it as an input of the jobs that read the folder, so adding a file reruns only what it
changes. A missing folder, an empty glob, fewer files than asked for, and an unreadable or
truncated image each stop with one line naming the folder, the numbers or the file.
"""

from __future__ import annotations

import argparse
import errno
import stat
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import world
from .cli import UserError
from .options import parse_named_json

# Images over Pillow's pixel limit are refused in one line (`_square`) before they are decoded,
# so Pillow's warning about them would only add a second line.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class FolderDataset:
    """Image files under `folder` matching `glob` (default: every image file, recursively)."""

    folder: Path
    glob: str | None = None
    size: int = 224  # working size: square crops resized to it

    @cached_property
    def _scan(self) -> tuple[tuple[Path, ...], tuple[tuple[str, str], ...]]:
        """(files, skipped): the image files, in sorted relative-path order, and the links
        that lead to no file read, as (relative path, why) in the same order."""
        if not self.folder.is_dir():
            raise UserError(f"data set folder {self.folder} not found")
        if self.glob and Path(self.glob).is_absolute():
            raise UserError(f"glob {self.glob} is absolute: give it relative to the folder "
                            f"{self.folder}, e.g. **/*.JPEG")
        walks = self.glob is None or "**" in self.glob  # into every folder
        every = list(self.folder.rglob("*")) if walks else []
        found = (list(self.folder.glob(self.glob)) if self.glob else
                 [p for p in every if p.suffix.lower() in IMAGE_SUFFIXES])
        files = sorted((p for p in found if p.is_file()), key=self._relative)
        if not files:
            raise UserError(f"no image files in {self.folder} match "
                            f"{self.glob or 'any image suffix'}")
        for p in files:  # names go into the shards' file lists, which are UTF-8 text
            try:
                self._relative(p).encode()
            except UnicodeEncodeError:
                raise UserError(f"the file name {ascii(str(p))} is not valid UTF-8: rename "
                                "it") from None
        entered = {d.as_posix() for p in files for d in PurePosixPath(self._relative(p)).parents}
        links = {p for p in found if p.is_symlink() and not p.is_file()}
        # a link to a folder that no file is under was not entered
        links |= {p for p in every if p.is_symlink() and p.is_dir()
                  and self._relative(p) not in entered}
        skipped = ((self._relative(p).encode(errors="backslashreplace").decode(),
                    _why_skipped(p)) for p in sorted(links, key=self._relative))
        return tuple(files), tuple(s for s in skipped if s[1])

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    @property
    def files(self) -> tuple[Path, ...]:
        """The image files, in sorted relative-path order."""
        return self._scan[0]

    @property
    def skipped(self) -> tuple[tuple[str, str], ...]:
        """Links under the folder that lead to no file read: (relative path, why), why being
        `dangling`, `loop` or `folder` (a link to a folder, which the walk does not enter)."""
        return self._scan[1]

    def skipped_note(self) -> str:
        """One line on the skipped links ('' if none), for the job logs and the page."""
        if not self.skipped:
            return ""
        words = {"dangling": "dangling", "loop": "in a loop", "folder": "to a folder, not entered"}
        parts = []
        for why, word in words.items():
            names = [name for name, w in self.skipped if w == why]
            if names:
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                parts.append(f"{len(names)} {word} ({shown})")
        n = len(self.skipped)
        links = "1 link" if n == 1 else f"{n} links"
        return (f"skipped {links} under {self.folder} that lead{'s' * (n == 1)} to no image "
                f"file: {'; '.join(parts)}")

    def listing(self, start: int = 0, stop: int | None = None) -> str:
        """One line per file start .. stop-1: relative path, size in bytes and modification
        time in nanoseconds, tab-separated (the workflow keeps each shard's as an input of its
        jobs). Size and time are make's and rsync's quick check: a file rewritten in place, or
        a link pointed elsewhere, changes its time though its size stays, without reading
        every image on every plan."""
        return "".join(f"{self._relative(p)}\t{s.st_size}\t{s.st_mtime_ns}\n"
                       for p in self.files[start:stop] for s in [p.stat()])

    def check_count(self, n: int) -> None:
        if len(self.files) < n:
            raise UserError(f"data set {self.folder} has {len(self.files)} images "
                            f"({self.glob or 'any image suffix'}), fewer than the {n} asked for")

    def read(self, indices: Sequence[int], workers: int = 1) -> np.ndarray:
        """uint8 [len(indices), size, size, 3]: images at `indices`, centre-cropped, resized,
        decoded by `workers` threads (Pillow releases the GIL while it decodes and resizes)."""
        self.check_count(max(indices, default=-1) + 1)
        if not indices:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        with ThreadPoolExecutor(max(1, min(workers, len(indices)))) as pool:
            return np.stack(list(pool.map(lambda i: _square(self.files[i], self.size),
                                          indices)))


def _why_skipped(link: Path) -> str:
    """Why a link is not read: `dangling` (its target is missing), `loop` (it leads back to
    itself), `folder`; '' when it leads to a file after all."""
    try:
        return "folder" if stat.S_ISDIR(link.stat().st_mode) else ""
    except OSError as err:
        return "loop" if err.errno == errno.ELOOP else "dangling"


def _as_rgb(image: Image.Image, path: Path) -> Image.Image:
    """8-bit RGB as an image viewer shows it: 16-bit grey scaled by its range (0..65535),
    floating-point grey in [0, 1] by 255, and transparent pixels composited on white (a
    colour hidden under alpha 0 is not shown, so it is not used)."""
    if image.mode in ("F", "I") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" else 65535.0
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= top):
            raise UserError(f"cannot read image {path}: its {image.mode} pixels span "
                            f"{values.min():g}..{values.max():g}, outside 0..{top:g}; save it "
                            "as 8 or 16-bit integers, or as floats in [0, 1]")
        return Image.fromarray(np.round(values * (255 / top)).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def _square(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:  # reads the header only
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or float("inf")):
                raise UserError(f"cannot read image {path}: {image.width} x {image.height} "
                                f"pixels, over Pillow's limit of {Image.MAX_IMAGE_PIXELS} (a "
                                "decompression bomb, or shrink it first)")
            # as a viewer shows it; decodes the whole file: a truncated one fails here
            image = _as_rgb(ImageOps.exif_transpose(image), path)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.uint8)


@dataclass(frozen=True)
class WorldDataset:
    """The shapes world's real images (image i from (seed, i)), at the world's 64 px."""

    seed: int = 0

    def listing(self, start: int = 0, stop: int | None = None) -> str:
        return f"world shapes seed {self.seed}\n"

    def check_count(self, n: int) -> None:
        return None  # the world has as many images as asked for

    def read(self, indices: Sequence[int], workers: int = 1) -> np.ndarray:
        return np.stack([world.render(1, self.seed, start=i).images[0] for i in indices]) \
            if indices else np.zeros((0, world.SIZE, world.SIZE, 3), np.uint8)


Dataset = FolderDataset | WorldDataset


def check_listing(data: Dataset, listing: str, start: int, stop: int) -> None:
    """One line unless files start .. stop-1 of `data` are those `listing` (the workflow's
    record of them when it planned the run) names, with the same sizes and times."""
    found, planned = data.listing(start, stop).splitlines(), listing.splitlines()
    if found != planned:
        line = next((i for i, (a, b) in enumerate(zip(found, planned, strict=False)) if a != b),
                    min(len(found), len(planned)))
        raise UserError(f"the data set changed since the run was planned (image {start + line}: "
                        f"{_entry(found, line)} where the plan had {_entry(planned, line)}); "
                        "run the workflow again")


def _entry(lines: list[str], line: int) -> str:
    if line >= len(lines):
        return "no file"
    path, *stat = lines[line].split("\t")
    if not stat:
        return path
    return f"{path} of {stat[0]} bytes" + (f" modified at {stat[1]} ns" if stat[1:] else "")


def dataset(declaration: dict, seed: int = 0) -> Dataset:
    """A data set from its params.yaml declaration: {folder, glob, size} or {world: shapes}."""
    if declaration.get("world") == "shapes":
        return WorldDataset(seed)
    if "folder" in declaration:
        return FolderDataset(Path(declaration["folder"]).expanduser(), declaration.get("glob"),
                             int(declaration.get("size", 224)))
    raise UserError(f"a data set is {{folder: PATH, glob: PATTERN}} or {{world: shapes}}, got "
                    f"{declaration!r}")


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """`--dataset NAME=JSON`: anchor the shard on a data set's images instead of a generator
    (`--gan` then names the anchor model), and `--listing` to check its files against."""
    parser.add_argument("--dataset", metavar="NAME=JSON",
                        help="a data set's params.yaml declaration ({folder, glob, size} or "
                        "{world: shapes}): mine its images with --gan as the anchor model")
    parser.add_argument("--listing", type=Path, help="the shard's file list as the workflow "
                        "planned it (path, tab, size per line): stop if the folder differs")


def from_args(args: argparse.Namespace) -> Dataset | None:
    """The data set of `--dataset NAME=JSON` (None without one), its name as args.subset,
    and its shard checked against `--listing`."""
    if args.dataset is None:
        if args.listing is not None:
            raise UserError("--listing checks a data set's files: give --dataset too")
        return None
    name, declaration = parse_named_json(args.dataset, "--dataset")
    args.subset = name
    data = dataset(declaration, args.seed)
    if args.listing is not None:
        try:
            listing = args.listing.read_text()
        except OSError as err:
            raise UserError(f"cannot read --listing {args.listing}: {err.strerror}") from None
        check_listing(data, listing, args.start, args.start + args.count)
    if isinstance(data, FolderDataset) and data.skipped:
        print(f"note: {data.skipped_note()}", file=sys.stderr)
    return data
