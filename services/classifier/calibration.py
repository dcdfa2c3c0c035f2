"""Calibration and thresholds from out-of-fold predictions (pure numpy; scipy only to fit).

- reason probabilities: one `Calibration` of the clip's averaged window probabilities, its method chosen
  by the log loss of CROSS-FITTED calibration (fitted on four folds' out-of-fold predictions, applied to
  the fifth), because one temperature cannot remove a shifted bias;
- not_sure threshold: from the risk-coverage curve of the top calibrated probability;
- cry threshold: from the out-of-fold cry probabilities of real cries, so that few cries are turned away.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
# Vector scaling: a little L2 on the biases, so a class seen a few times cannot get an extreme bias.
BIAS_L2 = 1e-3
PRIOR_WEIGHT_GRID = np.linspace(0.0, 1.0, 101)
# The candidates, simplest first (a tie of log losses keeps the simpler one).
CALIBRATION_METHODS = ("temperature", "vector_scaling", "prior_shrink")
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


@dataclass(frozen=True)
class Calibration:
    """p = (1 - prior_weight) * softmax(scale * log p̄ + bias) + prior_weight * prior, where p̄ is the mean
    over the clip's windows of softmax(window logits / temperature).

    Each method fits some parameters and leaves the others neutral (scale 1, bias 0, prior_weight 0), so
    one formula serves every method, the runtime and the evaluation alike.
    """

    method: str
    temperature: float
    scale: float
    bias: tuple[float, ...]
    prior_weight: float
    prior: tuple[float, ...]

    @classmethod
    def temperature_only(cls, temperature: float, n_labels: int) -> Calibration:
        """What files exported before vector scaling and shrinking meant by their plain `temperature`."""
        return cls("temperature", temperature, 1.0, (0.0,) * n_labels, 0.0, (1.0 / n_labels,) * n_labels)

    def probabilities(self, window_logits: np.ndarray, owner: np.ndarray, n_clips: int) -> np.ndarray:
        """(clips, labels) calibrated probabilities of the clips whose windows ``owner`` indexes."""
        mean = clip_probabilities(window_logits, owner, n_clips, self.temperature)
        scaled = softmax(self.scale * np.log(np.clip(mean, 1e-12, 1)) + np.array(self.bias))
        return (1 - self.prior_weight) * scaled + self.prior_weight * np.array(self.prior)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        fields = json.loads(text)
        return cls(**{**fields, "bias": tuple(fields["bias"]), "prior": tuple(fields["prior"])})


def fit_temperature(window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising the clip-level negative log-likelihood."""
    losses = [
        log_loss(clip_probabilities(window_logits, owner, len(targets), t), targets) for t in TEMPERATURE_GRID
    ]
    return float(TEMPERATURE_GRID[int(np.argmin(losses))])


def _fit_vector_scaling(window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray) -> Calibration:
    """softmax(a * log p̄ + b) with a >= 0 (a negative a would turn the model's ranking upside down)."""
    from scipy.optimize import minimize

    n_labels = window_logits.shape[1]
    log_mean = np.log(np.clip(clip_probabilities(window_logits, owner, len(targets)), 1e-12, 1))

    def loss(parameters: np.ndarray) -> float:
        scaled = softmax(parameters[0] * log_mean + parameters[1:])
        return log_loss(scaled, targets) + BIAS_L2 * float(np.sum(parameters[1:] ** 2))

    start = np.r_[1.0, np.zeros(n_labels)]
    bounds = [(0.0, None)] + [(None, None)] * n_labels
    fitted = minimize(loss, start, method="L-BFGS-B", bounds=bounds).x
    neutral = Calibration.temperature_only(1.0, n_labels)
    return Calibration(
        "vector_scaling", 1.0, float(fitted[0]), tuple(map(float, fitted[1:])), 0.0, neutral.prior
    )


def _fit_prior_shrink(window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray) -> Calibration:
    """The temperature-scaled probabilities mixed with the fitting clips' reason shares."""
    n_labels = window_logits.shape[1]
    temperature = fit_temperature(window_logits, owner, targets)
    scaled = clip_probabilities(window_logits, owner, len(targets), temperature)
    prior = np.bincount(targets, minlength=n_labels) / len(targets)
    losses = [log_loss((1 - weight) * scaled + weight * prior, targets) for weight in PRIOR_WEIGHT_GRID]
    weight = float(PRIOR_WEIGHT_GRID[int(np.argmin(losses))])
    return Calibration("prior_shrink", temperature, 1.0, (0.0,) * n_labels, weight, tuple(map(float, prior)))


def fit_calibration(
    method: str, window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray
) -> Calibration:
    """Fit one of CALIBRATION_METHODS on out-of-fold window logits of the clips ``targets`` labels."""
    if method == "temperature":
        temperature = fit_temperature(window_logits, owner, targets)
        return Calibration.temperature_only(temperature, window_logits.shape[1])
    if method == "vector_scaling":
        return _fit_vector_scaling(window_logits, owner, targets)
    if method == "prior_shrink":
        return _fit_prior_shrink(window_logits, owner, targets)
    raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(CALIBRATION_METHODS)}")


def _clip_subset(
    window_logits: np.ndarray, owner: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The windows of the kept clips, with their owners renumbered 0..kept clips - 1."""
    windows = keep[owner]
    renumbered = np.cumsum(keep) - 1
    return window_logits[windows], renumbered[owner[windows]]


def cross_fitted_probabilities(
    method: str, window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Each fold's clips calibrated by the method fitted on the other folds' clips only: an honest
    estimate of how calibrated the shipped calibration (fitted on every fold) is on unseen babies."""
    probabilities = np.zeros((len(targets), window_logits.shape[1]))
    for fold in np.unique(folds):
        held_out = folds == fold
        fitted = fit_calibration(method, *_clip_subset(window_logits, owner, ~held_out), targets[~held_out])
        logits, renumbered = _clip_subset(window_logits, owner, held_out)
        probabilities[held_out] = fitted.probabilities(logits, renumbered, int(held_out.sum()))
    return probabilities


def choose_calibration_method(
    window_logits: np.ndarray, owner: np.ndarray, targets: np.ndarray, folds: np.ndarray
) -> tuple[str, dict[str, float]]:
    """The method with the lowest cross-fitted log loss, and every candidate's cross-fitted log loss."""
    losses = {
        method: log_loss(cross_fitted_probabilities(method, window_logits, owner, targets, folds), targets)
        for method in CALIBRATION_METHODS
    }
    return min(CALIBRATION_METHODS, key=lambda method: losses[method]), losses


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
    # Rounded down, so every threshold answers at least the clips it came from (also when all are equal).
    for threshold in np.unique(np.floor(confidence * 1000) / 1000):
        answered = confidence >= threshold
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
    """A threshold that rejects at most CRY_REJECTION_BUDGET of the cries of every source, as high as that
    allows, set midway into the gap below the cry it rests on.

    The highest such threshold is that cry's own score, so the cry would sit on the edge: its score
    recomputed on another machine came out 3e-6 lower and the card's figures changed. Midway between it
    and the next lower cry of any source rejects the same cries with half the gap as margin."""
    # "lower": a real observed value, with at most floor(budget * (n - 1)) cries strictly below it.
    highest = min(
        float(np.quantile(p, CRY_REJECTION_BUDGET, method="lower"))
        for p in cry_probability_by_source.values()
    )
    cries = np.concatenate(list(cry_probability_by_source.values()))
    below = cries[cries < highest]
    return (highest + float(below.max())) / 2 if len(below) else highest
