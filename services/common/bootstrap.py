"""Confidence intervals that resample whole groups (pure numpy).

Clips of one baby, or responses of one voice, are not independent: resampling them one by one would make
the intervals too narrow, so the bootstrap resamples the groups they belong to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_ROUNDS = 1000

Metric = Callable[[np.ndarray], float]  # index array of items -> value


def group_bootstrap(
    metric: Metric, groups: Sequence[str], seed: int, rounds: int = BOOTSTRAP_ROUNDS
) -> tuple[float, float, float]:
    """(point estimate, 2.5%, 97.5%) of ``metric`` over items, resampling whole groups with replacement."""
    group_array = np.asarray(groups)
    unique = np.unique(group_array)
    members = [np.flatnonzero(group_array == g) for g in unique]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        chosen = rng.integers(0, len(unique), len(unique))
        values.append(metric(np.concatenate([members[i] for i in chosen])))
    low, high = np.percentile(values, [2.5, 97.5])
    return metric(np.arange(len(group_array))), float(low), float(high)
