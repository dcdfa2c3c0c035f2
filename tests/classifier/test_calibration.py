"""Calibration, thresholds and metrics on synthetic predictions whose answers are known."""

import numpy as np

from services.classifier import calibration, metrics


def test_temperature_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(3000, 4)) * 1.5
    targets = np.array([rng.choice(4, p=p) for p in calibration.softmax(true_logits)])
    temperature = calibration.fit_temperature(true_logits * 3.0, np.arange(3000), targets)
    assert 2.4 < temperature < 3.7


def test_not_sure_threshold_keeps_the_minimum_coverage() -> None:
    rng = np.random.default_rng(1)
    probabilities = calibration.softmax(rng.normal(size=(500, 5)) * 2)
    targets = probabilities.argmax(axis=1)
    targets[:200] = (targets[:200] + 1) % 5
    threshold = calibration.choose_not_sure_threshold(probabilities, targets)
    assert np.mean(probabilities.max(axis=1) >= threshold) >= calibration.MIN_COVERAGE


def test_cry_threshold_respects_the_budget_of_every_source() -> None:
    rng = np.random.default_rng(2)
    sources = {"donateacry": rng.uniform(0.5, 1, 700), "other": rng.uniform(0.2, 1, 30)}
    threshold = calibration.choose_cry_threshold(sources)
    for probabilities in sources.values():
        assert np.mean(probabilities < threshold) <= calibration.CRY_REJECTION_BUDGET


def test_metrics_on_a_known_confusion() -> None:
    targets = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    rows = metrics.per_class(targets, predictions, 3)
    assert rows[0] == (0.75, 0.75, 0.75, 4)
    assert rows[2] == (1.0, 1.0, 1.0, 2)
    assert metrics.balanced_accuracy(targets, predictions, 3) == (0.75 + 0.5 + 1.0) / 3


def test_group_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    correct = rng.random(400) < 0.7
    groups = [f"g{i // 4}" for i in range(400)]

    def accuracy(index: np.ndarray) -> float:
        return float(correct[index].mean())

    estimate, low, high = metrics.group_bootstrap(accuracy, groups, seed=0, rounds=300)
    assert low < estimate < high
    assert low > 0.6 and high < 0.8
