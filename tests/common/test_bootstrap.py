"""The group bootstrap behind every interval in the model cards and reports."""

import numpy as np

from services.common.bootstrap import group_bootstrap


def test_group_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    correct = rng.random(400) < 0.7
    groups = [f"g{i // 4}" for i in range(400)]

    def accuracy(index: np.ndarray) -> float:
        return float(correct[index].mean())

    estimate, low, high = group_bootstrap(accuracy, groups, seed=0, rounds=300)
    assert low < estimate < high
    assert low > 0.6 and high < 0.8
