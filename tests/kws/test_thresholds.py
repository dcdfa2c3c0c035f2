"""The threshold rule (pure): least calibration loss, above the floor of the false-alarm budget."""

import numpy as np

from services.kws.thresholds import THRESHOLDS, budget_floor, lowest_loss_threshold


def test_least_loss_ties_go_to_the_highest_threshold_at_or_above_the_floor():
    loss = np.ones(len(THRESHOLDS))
    loss[20:31] = 0.1  # 0.20 … 0.30
    loss[50] = 0.5
    assert lowest_loss_threshold(loss) == 0.30
    assert lowest_loss_threshold(loss, floor=0.25) == 0.30
    assert lowest_loss_threshold(loss, floor=0.40) == 0.50


def test_the_floor_is_above_every_threshold_over_the_budget():
    false = np.zeros(len(THRESHOLDS), int)
    false[:60] = 3  # three false intervals in half an hour up to 0.59: 6 per hour
    false[40] = 0  # a dip (runs merging) does not count as within budget
    assert budget_floor(false, hours=0.5, budget_per_hour=1.0) == 0.60
    assert budget_floor(false, hours=3.0, budget_per_hour=1.0) == 0.0  # 3 in 3 h is within 1 per hour
    assert budget_floor(np.zeros(len(THRESHOLDS), int), hours=0.1, budget_per_hour=1.0) == 0.0


def test_false_alarms_no_threshold_below_the_top_removes_do_not_raise_the_floor():
    """A confusable scored like the keyword fires up to 0.99: the budget counts the false alarms beyond it."""
    false = np.ones(len(THRESHOLDS), int)
    false[-1] = 0  # at 1.0 nothing fires
    false[:70] = 2
    assert budget_floor(false, hours=0.2, budget_per_hour=1.0) == 0.70
