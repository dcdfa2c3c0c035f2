"""Classification metrics with group bootstrap confidence intervals (pure numpy).

The bootstrap resamples app instances (groups), not clips: clips of one baby are not independent, so
resampling clips would make the intervals too narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_ROUNDS = 1000


def per_class(
    targets: np.ndarray, predictions: np.ndarray, n_classes: int
) -> list[tuple[float, float, float, int]]:
    """(precision, recall, F1, support) per class; 0 where undefined."""
    rows = []
    for label in range(n_classes):
        true_positive = np.sum((predictions == label) & (targets == label))
        predicted = np.sum(predictions == label)
        actual = np.sum(targets == label)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((float(precision), float(recall), float(f1), int(actual)))
    return rows


def macro_f1(targets: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    return float(np.mean([row[2] for row in per_class(targets, predictions, n_classes)]))


def balanced_accuracy(targets: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    recalls = [row[1] for row in per_class(targets, predictions, n_classes) if row[3] > 0]
    return float(np.mean(recalls))


def accuracy(targets: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """Share of clips answered right (n_classes is unused; it keeps the other clip metrics' signature)."""
    return float(np.mean(targets == predictions))


Metric = Callable[[np.ndarray], float]  # index array of clips -> value


def group_bootstrap(
    metric: Metric, groups: Sequence[str], seed: int, rounds: int = BOOTSTRAP_ROUNDS
) -> tuple[float, float, float]:
    """(point estimate, 2.5%, 97.5%) of ``metric`` over clips, resampling whole groups with replacement."""
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
