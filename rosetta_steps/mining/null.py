"""The null model of best buddies, and the false discovery rate it gives each pair.

Mutual K nearest neighbours (Eq. 3) return pairs even between unrelated models. The null
pairs G's maps of image i with D's maps of another image: within each batch of L images, D's
images are rolled by s = 1 + (r - 1) mod (L - 1) for null permutation r, a derangement that
keeps every unit's marginal statistics and the spatial priors both models share and removes
only the image-level correspondence. Its correlations go through the same exact accumulator
(`correlation`) and the same best-buddy rule.

The q value of an observed pair with correlation c is the target-decoy estimate of the false
discovery rate at threshold c: the mean number of null best-buddy pairs with correlation
>= c over the null permutations, divided by the number of observed pairs with correlation
>= c; made monotone (the smallest estimate at any threshold that still admits the pair) and
capped at 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def null_shift(r: int, batch: int) -> int:
    """How far null permutation r (1, 2, ...) rolls D's images within a batch of `batch`."""
    if r < 1:
        raise ValueError(f"null permutations are numbered from 1, got {r}")
    if batch < 2:
        raise ValueError("a null permutation needs batches of 2 images or more: no other "
                         "image of a 1-image batch to pair with")
    return 1 + (r - 1) % (batch - 1)


def q_values(observed: np.ndarray, nulls: Sequence[np.ndarray]) -> np.ndarray:
    """q of each observed best-buddy correlation, given the best-buddy correlations of each
    null permutation (same order as `observed`)."""
    observed = np.asarray(observed, dtype=np.float64)
    if not nulls:
        raise ValueError("q values need at least one null permutation")
    if len(observed) == 0:
        return np.zeros(0)
    order = np.argsort(-observed, kind="stable")
    ranked = observed[order]
    # observed pairs >= c, counted with ties: the position of the last value equal to c
    admitted = np.searchsorted(-ranked, -ranked, side="right")
    false = np.mean([np.searchsorted(-np.sort(np.asarray(n, dtype=np.float64))[::-1],
                                     -ranked, side="right") for n in nulls], axis=0)
    fdr = false / admitted
    q = np.minimum.accumulate(fdr[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out
