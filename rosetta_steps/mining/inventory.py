"""What mining a dictionary made, checked and counted: the stores of the paper's Eq. 1-2 (one
match store per (G, D) pair over the n images mined, with its null permutations), the sample
stores and the dissection tables.

Each store is checked as every step checks it (`core.stores.store_attrs`: complete, of its
kind) from its root metadata alone, without opening an array, so an inventory of gigabytes
takes a second. It says, per D, the images and units mined and the bytes, so a lab sees what a
push of its mining holds and a colleague what a pull brought; and its workflow job depends on
every mining output of the dictionary, so its DVC stage is the one name that `dvc pull
--with-deps` needs (docs/guides/sharing.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..core.cli import UserError
from ..core.stores import FILES, store_attrs
from .dissection import read_dissection


def _units(layers) -> int:
    """Units of a store's `gan_layers` / `disc_layers` attr: [[name, channels, size], ...]."""
    layers = json.loads(layers) if isinstance(layers, str) else layers
    return sum(int(channels) for _, channels, _ in layers)


def _bytes(path: Path, attrs: dict) -> int:
    """A store's bytes: the files its attr lists (checked present, at their sizes) and its
    root metadata."""
    return sum(attrs.get(FILES, {}).values()) + (path / "zarr.json").stat().st_size


def match_summary(path: str | Path) -> dict:
    """One match store (a D, a twin, the pixel control or G itself): its pair, images, units
    and bytes."""
    path = Path(path)
    attrs = store_attrs(path, "matches", "match store")
    return {"gan": attrs["gan"], "disc": attrs["disc"], "images": int(attrs["n_images"]),
            "gan_units": _units(attrs["gan_layers"]), "disc_units": _units(attrs["disc_layers"]),
            "bytes": _bytes(path, attrs)}


def inventory(name: str, matches: Sequence[str | Path], samples: Sequence[str | Path],
              nulls: Sequence[str | Path] = (), dissections: Sequence[str | Path] = ()) -> dict:
    """The inventory of dictionary `name`'s mining. Every match and null store must be of one
    generator and one count of images, and the sample stores must hold that many images:
    anything else is not one dictionary's mining."""
    stores = [match_summary(p) for p in matches]
    null_stores = [match_summary(p) for p in nulls]
    if not stores:
        raise UserError(f"inventory of {name}: no match store given")
    for path, s in zip([*matches, *nulls], [*stores, *null_stores], strict=True):
        if (s["gan"], s["images"]) != (stores[0]["gan"], stores[0]["images"]):
            raise UserError(
                f"match store {path} is {s['gan']} over {s['images']} images, not "
                f"{stores[0]['gan']} over {stores[0]['images']} as {matches[0]}: not one "
                f"dictionary's mining")
    pairs = {}
    for s in stores:
        own = [n for n in null_stores if n["disc"] == s["disc"]]
        pairs[s["disc"]] = {"images": s["images"], "gan_units": s["gan_units"],
                            "disc_units": s["disc_units"], "null_permutations": len(own),
                            "bytes": s["bytes"] + sum(n["bytes"] for n in own)}
    images, sample_bytes = 0, 0
    for path in map(Path, samples):
        attrs = store_attrs(path, "samples", "sample store")
        images += int(attrs["count"])
        sample_bytes += _bytes(path, attrs)
    if images != stores[0]["images"]:
        raise UserError(f"the sample stores of {name} hold {images} images, the match stores "
                        f"{stores[0]['images']}: not one dictionary's mining")
    tables = {}
    for path in map(Path, dissections):
        table = read_dissection(path)
        model = str(table["model"].iloc[0]) if len(table) else path.stem
        tables[model] = {"units": int(len(table[["layer", "channel"]].drop_duplicates())),
                         "labels": int(table["label"].nunique()),
                         "bytes": path.stat().st_size}
    total = (sum(p["bytes"] for p in pairs.values()) + sample_bytes
             + sum(t["bytes"] for t in tables.values()))
    return {"dictionary": name, "generator": stores[0]["gan"], "images": stores[0]["images"],
            "pairs": pairs,
            "samples": {"stores": len(samples), "images": images, "bytes": sample_bytes},
            "dissections": tables, "bytes": total}
