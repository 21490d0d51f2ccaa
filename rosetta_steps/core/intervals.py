"""Confidence intervals of a mean, as every table of this project reports them (the inversion
table, the null model's counts): the mean and the half-width of its 95% Student t-interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import t as student_t


def interval(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and the half-width of its 95% t-interval (None where there are too few values:
    JSON has no NaN)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if len(x) else None
    half = float(student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) \
        if len(x) > 1 else None
    return {"mean": mean, "ci95": half}
