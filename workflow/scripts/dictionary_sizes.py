"""Disk, host memory and GPU memory of each dictionary of params.yaml, counted by the mining
code's own budget (`rosetta_steps.mining.budget`), not measured: a planning tool, run by hand.

For every dictionary named (default: all of params.yaml's, in its order) it prints Markdown
tables: the models' units and weights (the registry's layer specs; weights counted on a model
built on torch's meta device, the bytes `budget.model_bytes` counts of a loaded one); the
bytes the stores take on disk, raw (before the stores' LZ4 codec, which keeps about 0.95 of
float64 states); and a fused match job of a fresh shard (every pair of the shard and G
against itself, as the workflow plans it, at params.yaml's `models.<G>.batch_size`): its
passes of G at each `--mem-mb` (`budget.fit_passes`), the least `mem_mb` that holds any plan
(to MB_STEP), the least that holds one pass (`budget.one_pass_mb`), and the host memory the
job needs beside the GPU on CUDA (docs/guides/gpu-sizes.md says which terms those are).

    python workflow/scripts/dictionary_sizes.py [NAME ...] [--params PATH] [--mem-mb MB ...]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
import yaml

from rosetta_steps import models
from rosetta_steps.core import datasets, world
from rosetta_steps.core.cli import UserError, run
from rosetta_steps.core.options import named_json
from rosetta_steps.core.units import ALL, LayerSpec, unit_count
from rosetta_steps.mining import budget
from rosetta_steps.mining.correlation import NULL
from rosetta_steps.mining.state import NATIVE_SUMS
from rosetta_steps.mining.sums import PARTNER_SUMS, STATE
from rosetta_steps.models.registry import RANDOM
from rosetta_steps.models.user import declare

ROOT = Path(__file__).resolve().parents[2]
BUDGETS = (16000, 24000, 40000, 80000)  # mem_mb at which the passes are counted
MB_STEP = 100  # the least mem_mb that holds a plan is found to this many MB
MB, GIB = budget.MB, 2**30
CORR = 4  # bytes of a match store's correlation (float32, `reduction.MatchWriter`)
USER_KEYS = ("file", "builder", "kind", "layers", "input", "latent")  # as workflow/rules


@dataclass(frozen=True)
class Model:
    """What the count needs of one model: its hooked layers, the bytes of its weights, the
    side of the images it generates (0: not a generator) and its latent's length."""

    layers: tuple[LayerSpec, ...]
    weights: int
    side: int
    latent: int


@cache
def model(name: str) -> Model:
    """A model's layers from the registry; its weights and image side from the model built
    on the meta device (no weights allocated), or at random weights on the CPU for a model
    with an operation the meta device lacks."""
    spec = models.get(name)
    generator = spec.kind == models.GENERATOR
    y = torch.zeros(1, dtype=torch.long) if generator and spec.latent.num_classes else None

    def side(net: torch.nn.Module) -> int:
        return int(spec.run(net, spec.example_input(), y)[0].shape[-1]) if generator else 0

    try:
        with torch.device("meta"):
            net = spec.build().eval()
            pixels = side(net)
    except (NotImplementedError, RuntimeError):
        net = models.load(name, RANDOM)[1]
        with torch.no_grad():
            pixels = side(net)
    return Model(tuple(spec.layer_specs()), budget.model_bytes(net), pixels,
                 spec.latent.dim if generator else 0)


@dataclass(frozen=True)
class Dictionary:
    """A dictionary as the workflow mines it: its anchor (G), the Ds, the partners of G's
    fused match jobs (every D of the dictionaries that share G and subset, then G), the
    images, the shards and the batch size of G's jobs."""

    name: str
    gan: str
    subset: str
    discs: tuple[str, ...]
    partners: tuple[str, ...]
    images: int
    shards: int
    shard: int  # images of the first (largest) shard
    batch: int
    side: int  # image side of the sample stores


def dictionaries(params: dict, names: Sequence[str]) -> list[Dictionary]:
    """The named dictionaries of `params` (all when none is named), in params.yaml's
    terms: `common.smk`'s anchor_of, subset_of, partners and batch_size_of."""
    known = params["dictionaries"]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"params.yaml has no dictionary {unknown[0]!r}; it has: "
                        f"{', '.join(known)}")
    for name, options in (params.get("models") or {}).items():  # users' own models
        if (options or {}).get("file"):
            declare([named_json(name, {k: options.get(k) for k in USER_KEYS})])

    def source(d: dict) -> tuple[str, str]:
        return d.get("gan") or d["anchor"], d.get("dataset") or d.get("class", ALL)

    out = []
    for name in names or list(known):
        d = known[name]
        gan, subset = source(d)
        discs = sorted({m for e in known.values() if source(e) == (gan, subset)
                        for m in e["discs"]})
        own = ((params.get("models") or {}).get(gan) or {}).get("batch_size")
        size, images = params["shard_size"], d["images"]
        declared = (params.get("datasets") or {}).get(d.get("dataset"))
        data = None if declared is None else datasets.dataset(declared)
        side = model(gan).side if data is None else getattr(data, "size", world.SIZE)
        out.append(Dictionary(name, gan, subset, tuple(d["discs"]), (*discs, gan), images,
                              math.ceil(images / size), min(size, images),
                              min(own or params["batch_size"], size, images), side))
    return out


def state_bytes(gan: Sequence[LayerSpec], disc: Sequence[LayerSpec], nulls: int) -> int:
    """Raw bytes of one pair's shard state (`state.StateWriter`): the cross products
    (float64), each null permutation's (float32) and each side's sums (float64), those at its
    own size and, per partner map size, the sum and sum of squares."""
    rows, cols = unit_count(gan), unit_count(disc)
    sizes = {side: len({s.size for s in specs}) for side, specs in (("gan", gan),
                                                                    ("disc", disc))}
    sums = (len(NATIVE_SUMS) * (rows + cols)
            + len(PARTNER_SUMS) * (rows * sizes["disc"] + cols * sizes["gan"]))
    return rows * cols * (STATE.itemsize + nulls * NULL.itemsize) + sums * STATE.itemsize


def match_bytes(gan: Sequence[LayerSpec], disc: Sequence[LayerSpec], nulls: int) -> int:
    """Raw bytes of a pair's match store and its null ones (`reduction.MatchWriter`): the
    correlations (float32) and every unit's mean and std (float64)."""
    rows, cols = unit_count(gan), unit_count(disc)
    return (1 + nulls) * (rows * cols * CORR + 2 * (rows + cols) * STATE.itemsize)


def sample_bytes(d: Dictionary) -> int:
    """Raw bytes of one image in the sample stores (`sampling.SampleCollector`): its uint8
    pixels, G's spatial means (float32), its latent (float32) and class (int64)."""
    g = model(d.gan)
    return 3 * d.side**2 + 4 * unit_count(g.layers) + 4 * g.latent + 8


class Plan(NamedTuple):
    """A fused match job's count: passes of G at each budget (None: no plan fits), the least
    mem_mb that holds a plan (to MB_STEP) and that holds one pass, the MB of the terms of the
    count that stay on the host on CUDA, and of the largest model's weights as loaded."""

    passes: tuple[int | None, ...]
    least: int
    one: float
    host: float
    loading: float


def passes(mem_mb: float, args: tuple) -> int | None:
    """Passes of G of the plan `budget.fit_passes` makes at `mem_mb`; None when none fits."""
    try:
        return len(budget.fit_passes(mem_mb, *args).passes)
    except UserError:
        return None


@cache
def plan(gan: str, partners: tuple[str, ...], batch: int, nulls: int,
         budgets: tuple[float, ...]) -> Plan:
    """The count of a fused match job of a fresh shard (`matching.mine_shard`): G against
    every partner, the models' weights loaded, `batch` images a batch. Dictionaries that
    share G and partners share it."""
    g = model(gan).layers
    discs = [model(p).layers for p in partners if p != gan]
    weights = [model(m).weights for m in partners]  # the Ds' and G's, as the job loads them
    args = (g, discs, [*discs, g], sum(weights), batch, nulls)  # fit_passes' after mem_mb
    one = budget.one_pass_mb(*args)
    low = int(budget.match_fixed(*args) / MB // MB_STEP)  # nothing fits below this
    high = math.ceil(one / MB_STEP)  # in steps of MB_STEP: low holds no plan, high one
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if passes(mid * MB_STEP, args) else (mid, high)
    # On CUDA the terms of match_fixed that stay on the host are the process and the writers'
    # rows: its count at a batch of 0 (no maps) and no weights. While the models load, the
    # largest is built on the host before it moves to the GPU (`models.load`).
    host = budget.match_fixed(g, discs, args[2], 0, 0, nulls) / MB
    return Plan(tuple(passes(b, args) for b in budgets), min(high * MB_STEP, math.ceil(one)),
                one, host, budget.WEIGHTS * max(weights) / MB)


def size(n: float) -> str:
    """Bytes in GiB, MiB or KiB."""
    for unit, scale in (("GiB", GIB), ("MiB", MB), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def tables(params: dict, found: Sequence[Dictionary], budgets: Sequence[float]) -> str:
    """The Markdown tables of `found`: models, disk, memory."""
    nulls = params["null"]["permutations"]
    names = list(dict.fromkeys(m for d in found for m in (d.gan, *d.partners)))
    out = [table(["model", "units", "map sizes", "weights"],
                 [[m, f"{unit_count(model(m).layers):,}",
                   ", ".join(map(str, sorted({s.size for s in model(m).layers}))),
                   size(model(m).weights)] for m in names])]
    disk, memory, stored = [], [], {}
    for d in found:
        g = model(d.gan).layers
        # (G, subset, D) -> bytes of its shard states, its match stores; and of the samples
        files = {(d.gan, d.subset, m): (d.shards * state_bytes(g, model(m).layers, nulls),
                                        match_bytes(g, model(m).layers, nulls), 0)
                 for m in (*d.discs, d.gan)}
        files[d.gan, d.subset, None] = (0, 0, d.images * sample_bytes(d))
        stored.update(files)  # dictionaries of one G and subset share these
        states, stores, samples = (sum(f[i] for f in files.values()) for i in range(3))
        disk.append([d.name, d.gan, ", ".join(d.discs), d.images, d.shards,
                     size(states / d.shards), *map(size, (states, stores, samples,
                                                          states + stores + samples))])
        job = plan(d.gan, d.partners, d.batch, nulls, tuple(budgets))
        memory.append([d.name, d.batch, *("none" if n is None else n for n in job.passes),
                       f"{job.least:,}", f"{math.ceil(job.one):,}", f"{math.ceil(job.host):,}",
                       f"{math.ceil(job.host + job.loading + d.shard * sample_bytes(d) / MB):,}"])
    if len(found) > 1:
        sums = [sum(f[i] for f in stored.values()) for i in range(3)]
        disk.append([f"all {len(found)}", "", "", "", "", "", *map(size, (*sums, sum(sums)))])
    out.append(table(["dictionary", "G", "Ds", "images", "shards", "states a shard",
                      "states, all shards", f"match stores (+ {nulls} null)", "sample stores",
                      "total"], disk))
    out.append(table(["dictionary", "batch", *(f"passes at {b:,.0f}" for b in budgets),
                      "least mem_mb", "mem_mb of one pass", "host terms of the count",
                      "host MB on CUDA"], memory))
    return "\n\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="dictionaries of the params file (default: all of them)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml",
                        help="the params file (default: the project's params.yaml)")
    parser.add_argument("--mem-mb", type=float, nargs="+", default=BUDGETS, metavar="MB",
                        help="budgets at which to count the passes of G "
                        f"(default {' '.join(map(str, BUDGETS))})")
    args = parser.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    found = dictionaries(params, args.names)
    nulls, shard = params["null"]["permutations"], params["shard_size"]
    print(f"Counted by `budget.fit_passes` for {shard}-image shards and {nulls} null "
          "permutations; disk raw, before the codec; MB = 2**20 bytes.\n")
    print(tables(params, found, args.mem_mb))


if __name__ == "__main__":
    raise SystemExit(run(main))
