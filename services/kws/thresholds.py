"""The calibration rule of the kws issue as pure numpy: a weighted loss of misses and false alarms per
threshold, and the threshold that minimises it, above a floor that keeps the false intervals per hour of
keyword-free speech within a budget. ``calibrate`` uses it against the echo path, its floor measured on
the validation voices' keyword-free speech; voice enrollment uses it against the known truth of the
client's held-out clips, its floor measured on the client's keyword-free clips."""

from __future__ import annotations

import numpy as np

THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.01), 2)
MISS_WEIGHT = 5.0  # an unmuted self-trigger is worse than a needlessly muted moment
FALSE_WEIGHT = 1.0
# The target: at most one false interval per hour of keyword-free speech (calibrate, enrollment).
FALSE_BUDGET_PER_HOUR = 1.0


def calibration_loss(
    missed: np.ndarray, false_alarms: np.ndarray, miss_weight: float, false_weight: float
) -> np.ndarray:
    """Loss per threshold: ``miss_weight`` × the share of misses plus ``false_weight`` × the share of false
    alarms, both boolean arrays with the threshold on their first axis (the rest: tracks, volumes)."""
    axes = tuple(range(1, missed.ndim))
    return miss_weight * missed.mean(axis=axes) + false_weight * false_alarms.mean(axis=axes)


def lowest_loss_threshold(loss: np.ndarray, floor: float = 0.0) -> float:
    """The threshold of least loss at or above ``floor``; ties go to the highest, which mutes least."""
    allowed = floor <= THRESHOLDS
    least = loss[allowed].min()
    return float(THRESHOLDS[np.flatnonzero(allowed & (loss == least))[-1]])


def budget_floor(false_intervals: np.ndarray, hours: float, budget_per_hour: float) -> float:
    """The lowest threshold above every threshold whose false intervals (one count per threshold of
    ``THRESHOLDS``) in ``hours`` of keyword-free speech exceed the budget.

    The budget counts the false intervals beyond those still there at the highest threshold below the
    top (1.0, where nothing fires): a keyword-free clip the head scores like the keyword (a confusable
    said just like it) is out of any threshold's reach, and without this the floor would climb to where
    no keyword is caught either. Above every one, not merely the lowest within budget: runs that merge at
    a lower threshold can make the count dip there, and that dip says nothing about the thresholds above.
    """
    allowed = false_intervals[-2] + budget_per_hour * hours
    over = np.flatnonzero(false_intervals > allowed)
    return float(THRESHOLDS[min(over[-1] + 1, len(THRESHOLDS) - 1)]) if len(over) else float(THRESHOLDS[0])
