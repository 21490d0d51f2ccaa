"""workflow/scripts/dictionary_sizes.py, the planning table of disk and memory per dictionary:
its byte counts are the bytes the steps write (a shard of the shapes zoo mined, reduced and
sampled), its figures for the shapes dictionary are those worked out by hand, and its one-pass
figure is `budget.one_pass_mb` of the models as a match job loads them."""

from __future__ import annotations

import importlib.util
import math
import sys

import yaml
from workflow_project import ROOT

from rosetta_steps import models
from rosetta_steps.core.stores import open_store
from rosetta_steps.mining.budget import model_bytes, one_pass_mb
from rosetta_steps.mining.matching import Pair, mine_shard
from rosetta_steps.mining.reduction import reduce_pair


def _script():
    spec = importlib.util.spec_from_file_location(
        "dictionary_sizes", ROOT / "workflow" / "scripts" / "dictionary_sizes.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # for dataclasses
    spec.loader.exec_module(module)
    return module


sizes = _script()
DISCS = ["shapes-cnn-sup", "shapes-cnn-ssl", "shapes-vit-mae"]
PARAMS = {"batch_size": 32, "shard_size": 128, "null": {"permutations": 2}, "models": {},
          "dictionaries": {"shapes": {"gan": "shapes-gan", "discs": DISCS, "images": 256}}}


def data_bytes(path, kind: str) -> int:
    """The bytes of a store's data variables, as its arrays hold them (before the codec)."""
    return sum(v.nbytes for v in open_store(path, kind).data_vars.values())


def test_counts_are_the_bytes_the_steps_write(tmp_path):
    """A shard of every pair with 2 null permutations, its sample store, and each pair's
    match and null stores: their arrays hold the bytes the script counts."""
    (d,) = sizes.dictionaries(PARAMS, ["shapes"])
    pairs = [Pair(m, tmp_path / f"{m}.zarr") for m in (*DISCS, "shapes-gan")]
    weights = dict.fromkeys(["shapes-gan", *DISCS], "random")
    mine_shard("shapes-gan", pairs, weights=weights, seed=0, start=0, count=4, batch_size=2,
               nulls=2, samples=tmp_path / "samples.zarr")
    g = models.get("shapes-gan").layer_specs()
    for m, path in pairs:
        disc = models.get(m).layer_specs()
        assert data_bytes(path, "correlation-state") == sizes.state_bytes(g, disc, 2), m
        out = tmp_path / "matches" / f"{m}.zarr"
        reduce_pair([path], out, [out.with_suffix(f".null{r}.zarr") for r in (1, 2)])
        written = sum(data_bytes(p, "matches") for p in out.parent.glob(f"{m}*.zarr"))
        assert written == sizes.match_bytes(g, disc, 2), m
    assert data_bytes(tmp_path / "samples.zarr", "samples") == 4 * sizes.sample_bytes(d)


def test_the_shapes_dictionary_by_hand(tmp_path, capsys):
    """G (496 units at 5 map sizes) against shapes-cnn-sup and -ssl (240 units at 4 sizes) and
    MAE (1536 units at 1 size), and itself, with 2 nulls: a pair's state is its cross products
    (8 bytes a cell, and 4 per null), 3 sums a unit and 2 per unit and partner size (8 bytes
    each)."""
    units = {m: (sum(s.channels for s in models.get(m).layer_specs()),
                 len({s.size for s in models.get(m).layer_specs()}))
             for m in ("shapes-gan", *DISCS)}
    assert units == {"shapes-gan": (496, 5), "shapes-cnn-sup": (240, 4),
                     "shapes-cnn-ssl": (240, 4), "shapes-vit-mae": (1536, 1)}
    cnn = 496 * 240 * 16 + 8 * (3 * (496 + 240) + 2 * (496 * 4 + 240 * 5))  # 1,973,248
    itself = 496 * 496 * 16 + 8 * (3 * (496 + 496) + 2 * (496 * 5 + 496 * 5))  # 4,039,424
    mae = 496 * 1536 * 16 + 8 * (3 * (496 + 1536) + 2 * (496 * 1 + 1536 * 5))  # 12,369,280
    shard = 2 * cnn + itself + mae
    assert shard == 20_355_200
    # the match store and its 2 nulls: float32 correlations, float64 mean and std a unit
    stores = 3 * (2 * (496 * 240 * 4 + 2 * 736 * 8) + 496 * 496 * 4 + 2 * 992 * 8
                  + 496 * 1536 * 4 + 2 * 2032 * 8)

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    sizes.main(["shapes", "--params", str(params), "--mem-mb", "16000"])
    disk, memory = (line.strip("| ").split(" | ") for line in capsys.readouterr().out
                    .splitlines() if line.startswith("| shapes |"))
    samples = 256 * (64 * 64 * 3 + 4 * 496 + 4 * 64 + 8)  # pixels, means, latent, class
    assert disk == ["shapes", "shapes-gan", ", ".join(DISCS), "256", "2", sizes.size(shard),
                    sizes.size(2 * shard), sizes.size(stores), sizes.size(samples),
                    sizes.size(2 * shard + stores + samples)]
    assert sizes.size(shard) == "19.4 MiB"

    # a fused match job of a fresh shard loads G and the Ds and writes every pair
    loaded = {m: models.load(m, "random") for m in ("shapes-gan", *DISCS)}
    g, discs = (loaded["shapes-gan"][0].layer_specs(),
                [loaded[m][0].layer_specs() for m in sorted(DISCS)])
    need = one_pass_mb(g, discs, [*discs, g], sum(model_bytes(m) for _, m in loaded.values()),
                       32, 2)
    assert memory[1:3] == ["32", "1"] and memory[4] == f"{math.ceil(need):,}"
    assert int(memory[3].replace(",", "")) <= math.ceil(need)
