"""One shard of unit matching for a generator and any number of partners (paper, Eq. 1-2).

For images start .. start+count-1 of a seed and subset, the generator makes each image from
its latent (latent i depends only on the seed and i), its hooked layers give the G maps, each
discriminative model sees the image through its own preprocessing and gives its D maps, and a
correlation accumulator per pair takes both. The generator's own name as a partner matches G
against itself, which the Rosetta step needs for BB(G, G). With `nulls`, every accumulator
also keeps that many null permutations of the pairing (`null`), from the same forward passes.
A dictionary anchored on a data set reads image i of the data set instead, and its anchor (a
discriminative model) plays G's role throughout (`sampling.dataset_batches`).

`mine_shard` serves all of a shard's pairs from one forward pass of G (and one of each D) per
image: the physical limit of mining. When the pairs' states do not fit the job's memory
budget together (what the models, maps and writers leave of it, `budget`), they are cut
into row blocks of G units (`blocks`) and packed into as few passes as fit, and D's side of
each block may be taken a chunk of units at a time when that saves passes; each pair's
shard store is the same whichever way it was cut or grouped (up to the last bits of
rounding for a cut inside a GEMM tile or a chunk).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import torch

from .. import models
from ..core.cli import UserError
from ..core.datasets import Dataset
from ..core.devices import forward_precision
from ..core.units import ALL, unit_count
from .blocks import block_maps, plan_passes
from .budget import fit_passes, model_bytes, one_pass_mb
from .buffers import Buffers
from .correlation import CorrelationAccumulator, layer_specs
from .sampling import (
    Loaded,
    SampleCollector,
    anchored_batches,
    check_finite,
    check_shard,
    check_source,
    write_samples,
)
from .state import StateWriter

# Every store a match job writes records what the job wrote together (attr MINED_WITH: its
# partners in order, and SAMPLES when it wrote the sample store), so that the workflow plans
# a fused job's outputs with the rule that made them (workflow/rules/common.smk).
MINED_WITH, SAMPLES = "mined_with", "+samples"


class Pair(NamedTuple):
    """A partner of the generator (its own name for G against G) and its shard store."""

    disc: str
    out: Path


class Mined(NamedTuple):
    """What `mine_shard` did: its passes of G, and the least `mem_mb` that would have taken
    one (`budget.one_pass_mb`)."""

    passes: int
    one_pass_mb: float


class Block(NamedTuple):
    """G units start .. stop-1 against all units of a partner (None: G itself)."""

    disc: str | None
    start: int
    stop: int


@torch.no_grad()
def accumulate_pass(gan: Loaded, blocks: Sequence[Block], discs: Mapping[str, Loaded],
                    seed: int, indices: range, batch_size: int,
                    truncation: float | None = None, device: torch.device | str = "cpu",
                    class_index: int | None = None, nulls: int = 0, autocast: str = "off",
                    samples: SampleCollector | None = None, data: Dataset | None = None,
                    chunk: int | None = None) -> list[CorrelationAccumulator]:
    """One forward pass of G (the anchor, over `data`'s images) and of each D named in
    `blocks` over `indices`; the statistics of every block (and, given a collector, the
    sample store's contents), D's side `chunk` units at a time."""
    device = torch.device(device)
    g_spec = gan[0]
    scratch = Buffers(device)  # the blocks are updated in turn: one set of temporaries
    accs = [CorrelationAccumulator(device=device, nulls=nulls, scratch=scratch, chunk=chunk)
            for _ in blocks]
    needed = sorted({b.disc for b in blocks} - {None})
    g_layers = None
    name = f"{g_spec.name}: {len(blocks)} block(s) of {len(needed)} D(s) and G"
    for lo, (z, _, images, g_maps) in zip(indices[::batch_size], anchored_batches(
            gan, seed, indices, batch_size, truncation, class_index, device, desc=name,
            autocast=autocast, data=data), strict=True):
        g_layers = g_layers or layer_specs(g_maps, g_spec.name)
        if samples is not None:
            samples.add(z, images, g_maps)
        maps = {None: g_maps}
        for d in needed:
            d_spec, d_model = discs[d]
            with forward_precision(device, autocast):
                maps[d] = d_spec.run(d_model, d_spec.preprocess(images.float()))[1]
            check_finite(d_spec.name, maps[d], lo)
        for block, acc in zip(blocks, accs, strict=True):
            acc.update(block_maps(g_maps, g_layers, block.start, block.stop), maps[block.disc])
        maps = g_maps = images = None  # before the next batch's maps are made
    return accs


def match_models(gan: Loaded, disc: Loaded | None, seed: int, indices: range, batch_size: int,
                 truncation: float | None = None, device: torch.device | str = "cpu",
                 class_index: int | None = None, nulls: int = 0) -> CorrelationAccumulator:
    """Statistics of one loaded pair, whole (G against itself without `disc`)."""
    blocks = [Block(disc[0].name if disc else None, 0, unit_count(gan[0].layer_specs()))]
    return accumulate_pass(gan, blocks, {disc[0].name: disc} if disc else {}, seed, indices,
                           batch_size, truncation, device, class_index, nulls)[0]


def _check_pairs(gan: str, pairs: Sequence[Pair]) -> None:
    outs = Counter(str(p.out) for p in pairs)
    twice = [o for o, n in outs.items() if n > 1] + [
        d for d, n in Counter(p.disc for p in pairs).items() if n > 1]
    if twice:
        raise UserError(f"{twice[0]} is given twice: give each partner and output once")
    for p in pairs:
        if p.disc != gan and models.get(p.disc).kind != models.DISCRIMINATIVE:
            raise UserError(f"{p.disc} is a {models.get(p.disc).kind}; match a generator "
                            "against discriminative models (or against itself)")


def mine_shard(gan: str, pairs: Sequence[Pair], weights: Mapping[str, str | Path], seed: int,
               start: int, count: int, batch_size: int, truncation: float | None = None,
               device: torch.device | str = "cpu", subset: str = ALL, nulls: int = 0,
               mem_mb: float = float("inf"), samples: str | Path | None = None,
               autocast: str = "off", data: Dataset | None = None,
               state_mb: float | None = None) -> Mined:
    """Write the shard store of images start .. start+count-1 of every pair (and, given
    `samples`, the shard's sample store) in as few forward passes of G as the states fit
    the share of `mem_mb` the rest of the job leaves them (`budget`; `state_mb` sets that
    share instead); returns the number of passes and the least `mem_mb` of one pass.
    `weights` maps model names to weights files. With `data` (a data set named `subset`),
    `gan` is the anchor model."""
    check_shard(start, count, batch_size, nulls)
    cls = check_source(gan, subset, data, start + count)  # before any weights load
    g_spec = models.get(gan)
    _check_pairs(gan, pairs)
    g_layers = g_spec.layer_specs()
    partners = {p.disc: g_layers if p.disc == gan else models.get(p.disc).layer_specs()
                for p in pairs}
    g = models.load(gan, weights.get(gan), device)
    discs = {d: models.load(d, weights.get(d), device) for d in partners if d != gan}
    loaded = model_bytes(g[1]) + sum(model_bytes(m) for _, m in discs.values())
    layouts = (g_layers, [partners[d] for d in discs], [partners[p.disc] for p in pairs],
               loaded, min(batch_size, count), nulls)
    if state_mb is None:
        passes, chunk = fit_passes(mem_mb, *layouts)
    else:
        passes = plan_passes(g_layers, [unit_count(partners[p.disc]) for p in pairs],
                             nulls, state_mb)
        chunk = None
    passes = passes or [[]]
    indices = range(start, start + count)
    collector = None if samples is None else SampleCollector(g_spec, subset, seed, indices,
                                                             truncation, cls, data is not None)
    together = " ".join([p.disc for p in pairs] + [SAMPLES] * (samples is not None))
    attrs = {"subset": subset, "seed": str(seed), "start": str(start), "count": str(count),
             MINED_WITH: together}
    with ExitStack() as stack:
        writers = [stack.enter_context(StateWriter(p.out, g_layers, partners[p.disc], nulls,
                                                   gan=gan, disc=p.disc, **attrs))
                   for p in pairs]
        for n, planned in enumerate(passes):
            blocks = [Block(None if pairs[i].disc == gan else pairs[i].disc, lo, hi)
                      for i, lo, hi in planned]
            accs = accumulate_pass(g, blocks, discs, seed, indices, batch_size, truncation,
                                   device, cls, nulls, autocast, collector if n == 0 else None,
                                   data, chunk)
            for (i, lo, _), acc in zip(planned, accs, strict=True):
                writers[i].add(lo, acc)
            acc = accs = None  # this pass's states go before the next pass makes its own
        for w in writers:
            w.finish()
        if collector is not None:
            ds = collector.dataset()
            ds.attrs[MINED_WITH] = together
            write_samples(ds, samples)
    return Mined(len(passes), one_pass_mb(*layouts))
