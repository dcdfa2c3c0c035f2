"""Classification metrics over clips (pure numpy); their intervals come from services.common.bootstrap."""

from __future__ import annotations

import numpy as np


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
