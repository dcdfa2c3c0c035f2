"""Frame labels from keyword spans (pure numpy): shared by training and voice enrollment."""

from __future__ import annotations

import numpy as np

from services.kws.detector import FrameTiming

EDGE_IGNORE_MS = 30.0  # frames this close to a span edge are neither positive nor negative in training


def frame_labels(
    n_score_frames: int, spans_ms: list[tuple[float, float]], timing: FrameTiming
) -> tuple[np.ndarray, np.ndarray]:
    """Per score frame: 1 inside a keyword span, 0 outside; weight 0 near span edges."""
    centres = np.asarray(timing.centre_ms(np.arange(n_score_frames)))
    labels = np.zeros(n_score_frames, np.float32)
    weights = np.ones(n_score_frames, np.float32)
    for start, end in spans_ms:
        labels[(centres >= start) & (centres <= end)] = 1.0
        near_edge = (np.abs(centres - start) < EDGE_IGNORE_MS) | (np.abs(centres - end) < EDGE_IGNORE_MS)
        weights[near_edge] = 0.0
    return labels, weights
