"""Stability in n: do the best buddies (Eq. 3) of a (G, D) pair change with more images?

The match shards of a pair hold disjoint blocks of images, and their states merge exactly
(`state`), so best buddies of any union of shards come with no new forward pass. For the
fractions 1/8, 1/4, 1/2 and 1 of the shards, taken from the first image on (rounded down to
whole shards, at least one), this gives the best-buddy set and its Jaccard overlap with the
set of all images; and the split-half Jaccard: best buddies of the even-numbered shards
against those of the odd-numbered ones, two disjoint halves of the images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from ..core.cli import UserError
from .buddies import buddy_pairs, check_k, check_rule
from .correlation import CorrelationAccumulator
from .state import check_shards, load_accumulator

FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; 1 for two empty sets."""
    return len(a & b) / len(a | b) if a | b else 1.0


def pair_set(acc: CorrelationAccumulator, k: int, rule: str) -> set[tuple[int, int]]:
    """The best-buddy (G unit, D unit) pairs of an accumulator, in the store's unit order."""
    corr = acc.correlation()
    j, kk, _ = buddy_pairs([(0, corr.cpu())], k, rule)
    return set(zip(j.tolist(), kk.tolist(), strict=True))


def _merged(paths: Sequence[str | Path], device: str | torch.device) -> CorrelationAccumulator:
    acc = CorrelationAccumulator(device)
    for p in paths:
        acc.merge(load_accumulator(p, CorrelationAccumulator(device), nulls=False),
                  consume=True)
    return acc


def stability(shards: Sequence[str | Path], k: int, rule: str = "mutual",
              device: str | torch.device = "cpu") -> dict:
    """The stability table of a pair's shards (taken in image order, by their attr `start`):
    per fraction its images, best buddies and Jaccard with the full set; and the split-half
    Jaccard."""
    if len(shards) < 2:
        raise UserError("stability needs at least 2 shards of a pair (disjoint image blocks); "
                        "make shard_size smaller than the images mined")
    check_rule(rule)
    run = check_shards(shards)
    shards = run.paths
    counts = sorted({int(f * len(shards)) for f in FRACTIONS} - {0})  # whole shards, from 1
    prefix = CorrelationAccumulator(device)
    sets, table = {}, []
    for i, path in enumerate(tqdm(shards, desc="stability", unit="shard"), start=1):
        prefix.merge(load_accumulator(path, CorrelationAccumulator(device), nulls=False),
                     consume=True)
        if i in counts:
            try:
                check_k(k, prefix.gan.n_units, prefix.disc.n_units)
            except ValueError as err:
                raise UserError(str(err)) from None
            sets[i] = pair_set(prefix, k, rule)
            table.append({"shards": i, "images": prefix.n_images,
                          "best_buddies": len(sets[i])})
    full = sets[len(shards)]
    for row in table:
        row["jaccard"] = jaccard(sets[row["shards"]], full)
    halves = [_merged(shards[h::2], device) for h in (0, 1)]
    sets_half = [pair_set(h, k, rule) for h in halves]
    return {"gan": run.gan, "disc": run.disc, "k": k, "rule": rule, "fractions": table,
            "split_half": {"images": [h.n_images for h in halves],
                           "best_buddies": [len(h) for h in sets_half],
                           "jaccard": jaccard(*sets_half)}}
