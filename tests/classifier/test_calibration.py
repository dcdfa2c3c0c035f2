"""Calibration, thresholds and metrics on synthetic predictions whose answers are known."""

import numpy as np

from services.classifier import calibration, metrics


def test_temperature_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(3000, 4)) * 1.5
    targets = np.array([rng.choice(4, p=p) for p in calibration.softmax(true_logits)])
    temperature = calibration.fit_temperature(true_logits * 3.0, np.arange(3000), targets)
    assert 2.4 < temperature < 3.7


def shifted_model(seed: int, n_clips: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window logits (two windows a clip) of a model right about the ranking but with a shifted bias, the
    clips' true classes, and 5 folds."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(n_clips, 3)) + np.array([1.5, 0.0, -1.0])
    targets = np.array([rng.choice(3, p=p) for p in calibration.softmax(true_logits)])
    biased = true_logits - np.array([1.5, 0.0, -1.0])  # the model believes the classes are balanced
    return np.repeat(biased, 2, axis=0), targets, np.arange(n_clips) % 5


def test_vector_scaling_removes_a_shifted_bias_that_one_temperature_cannot() -> None:
    window_logits, targets, folds = shifted_model(4)
    owner = np.repeat(np.arange(len(targets)), 2)
    method, losses = calibration.choose_calibration_method(window_logits, owner, targets, folds)
    assert method == "vector_scaling"
    assert losses["vector_scaling"] < losses["temperature"] - 0.05
    fitted = calibration.fit_calibration("vector_scaling", window_logits, owner, targets)
    assert 0.8 < fitted.scale < 1.25 and fitted.bias[0] - fitted.bias[2] > 1.8


def test_a_model_that_knows_nothing_is_shrunk_to_the_prior_and_cross_fitting_is_out_of_fold() -> None:
    rng = np.random.default_rng(5)
    targets = rng.choice(3, size=600, p=[0.7, 0.2, 0.1])
    window_logits, owner = rng.normal(size=(600, 3)) * 2, np.arange(600)
    fitted = calibration.fit_calibration("prior_shrink", window_logits, owner, targets)
    assert fitted.prior_weight > 0.9
    np.testing.assert_allclose(fitted.prior, np.bincount(targets) / 600)
    folds = np.arange(600) % 5
    crossed = calibration.cross_fitted_probabilities("prior_shrink", window_logits, owner, targets, folds)
    np.testing.assert_allclose(crossed.sum(axis=1), 1)
    # Changing one fold's answers changes the calibration of the other folds only, never its own.
    changed = targets.copy()
    changed[folds == 0] = 2
    again = calibration.cross_fitted_probabilities("prior_shrink", window_logits, owner, changed, folds)
    np.testing.assert_allclose(again[folds == 0], crossed[folds == 0])
    assert not np.allclose(again[folds == 1], crossed[folds == 1])


def test_calibration_round_trips_through_metadata_and_old_files_mean_a_temperature() -> None:
    window_logits, targets, _ = shifted_model(6, 300)
    owner = np.repeat(np.arange(300), 2)
    fitted = calibration.fit_calibration("vector_scaling", window_logits, owner, targets)
    assert calibration.Calibration.from_json(fitted.to_json()) == fitted
    old = calibration.Calibration.temperature_only(0.5, 3)
    np.testing.assert_allclose(
        old.probabilities(window_logits, owner, 300),
        calibration.clip_probabilities(window_logits, owner, 300, 0.5),
    )


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


def test_cry_threshold_sits_midway_below_the_cry_it_rests_on() -> None:
    cries = np.linspace(0.30, 0.99, 100)  # 4% of 100: at most 3 strictly below (floor(0.04 * 99))
    threshold = calibration.choose_cry_threshold({"donateacry": cries})
    assert threshold == (cries[3] + cries[2]) / 2
    assert np.sum(cries < threshold) == 3, "the same cries are rejected as at the highest threshold"
    assert calibration.choose_cry_threshold({"few": np.array([0.6, 0.7])}) == 0.6, "no cry below: no gap"
    # The gap is the one below the binding cry among every source's cries, so a small source with a
    # wide gap below its own budget cry does not drag the threshold down.
    sources = {"many": cries, "few": np.array([0.05] + [0.33] * 29)}  # its budget cry 0.33, gap to 0.05
    assert calibration.choose_cry_threshold(sources) == (cries[3] + cries[2]) / 2


def test_metrics_on_a_known_confusion() -> None:
    targets = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    rows = metrics.per_class(targets, predictions, 3)
    assert rows[0] == (0.75, 0.75, 0.75, 4)
    assert rows[2] == (1.0, 1.0, 1.0, 2)
    assert metrics.balanced_accuracy(targets, predictions, 3) == (0.75 + 0.5 + 1.0) / 3
