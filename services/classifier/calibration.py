"""Calibration and thresholds from out-of-fold predictions (pure numpy).

- temperature: one scalar T dividing the reason logits, chosen to minimise the out-of-fold log loss;
- not_sure threshold: from the risk-coverage curve of the top calibrated probability;
- cry threshold: from the out-of-fold cry probabilities of real cries, so that few cries are turned away.
"""

from __future__ import annotations

import numpy as np

TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
# The gate may turn away at most this share of real cries (target: <= 5%), measured out of fold
# separately on Donate-a-Cry and on cries from outside it (ESC crying_baby); the stricter one wins.
CRY_REJECTION_BUDGET = 0.04
# "not sure" must still leave this share of cries with an answer.
MIN_COVERAGE = 0.5
# Equal-width bins of the top probability for the expected calibration error and the reliability plot.
RELIABILITY_BINS = 10


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def clip_probabilities(
    window_logits: np.ndarray,
    owner: np.ndarray,
    n_clips: int,
    temperature: float = 1.0,
) -> np.ndarray:
    """Clip-level class probabilities: the mean of the clip's window probabilities."""
    totals = np.zeros((n_clips, window_logits.shape[1]))
    np.add.at(totals, owner, softmax(window_logits / temperature))
    return totals / np.bincount(owner, minlength=n_clips)[:, None]


def fit_temperature(window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising the clip-level negative log-likelihood."""
    losses = [
        log_loss(clip_probabilities(window_logits, owner, len(targets), t), targets) for t in TEMPERATURE_GRID
    ]
    return float(TEMPERATURE_GRID[int(np.argmin(losses))])


def log_loss(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (probabilities clipped at 1e-12)."""
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(targets)), targets], 1e-12, 1))))


def reliability_bins(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = RELIABILITY_BINS
) -> list[tuple[float, float, float]]:
    """(share of clips, mean top probability, accuracy) per non-empty bin of the top probability.

    The one binning behind both the expected calibration error and the reliability plot.
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append(
                (float(inside.mean()), float(confidence[inside].mean()), float(correct[inside].mean()))
            )
    return rows


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Share-weighted gap between the top probability and the accuracy over RELIABILITY_BINS bins."""
    return float(
        sum(
            share * abs(confidence - accuracy)
            for share, confidence, accuracy in reliability_bins(probabilities, targets)
        )
    )


def risk_coverage(probabilities: np.ndarray, targets: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, coverage, risk): answer only when the top probability >= threshold; risk = error rate."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    curve = []
    for threshold in np.unique(np.round(confidence, 3)):
        answered = confidence >= threshold
        if not answered.any():  # rounding can lift the top threshold above every confidence
            continue
        curve.append((float(threshold), float(answered.mean()), float(1 - correct[answered].mean())))
    return curve


def choose_not_sure_threshold(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Lowest-risk threshold that still answers at least MIN_COVERAGE of the clips (ties: more coverage)."""
    eligible = [
        (risk, -coverage, threshold)
        for threshold, coverage, risk in risk_coverage(probabilities, targets)
        if coverage >= MIN_COVERAGE
    ]
    return min(eligible)[2]


def choose_cry_threshold(cry_probability_by_source: dict[str, np.ndarray]) -> float:
    """Highest threshold that rejects at most CRY_REJECTION_BUDGET of the cries of every source."""
    # "lower": a real observed value, with at most floor(budget * (n - 1)) cries strictly below it.
    return float(
        min(np.quantile(p, CRY_REJECTION_BUDGET, method="lower") for p in cry_probability_by_source.values())
    )
