"""The calibration rule of the kws issue as pure numpy: a weighted loss of misses and false alarms per
threshold, and the threshold that minimises it. ``calibrate`` uses it against the echo path; voice
enrollment uses it against the known truth of the client's held-out clips."""

from __future__ import annotations

import numpy as np

THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.01), 2)
MISS_WEIGHT = 5.0  # an unmuted self-trigger is worse than a needlessly muted moment
FALSE_WEIGHT = 1.0


def calibration_loss(
    playback_fires: np.ndarray, mic_fires: np.ndarray, miss_weight: float, false_weight: float
) -> np.ndarray:
    """Loss per threshold; ``playback_fires`` (thresholds, tracks), ``mic_fires`` (volumes, tracks)."""
    misses = (mic_fires[None] & ~playback_fires[:, None]).mean(axis=(1, 2))
    false = (playback_fires[:, None] & ~mic_fires[None]).mean(axis=(1, 2))
    return miss_weight * misses + false_weight * false


def lowest_loss_threshold(loss: np.ndarray) -> float:
    """The threshold of least loss; ties go to the highest, which mutes least."""
    return float(THRESHOLDS[np.flatnonzero(loss == loss.min())[-1]])
