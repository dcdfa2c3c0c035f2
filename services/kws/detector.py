"""Frame scores → detections: smoothing, a threshold, patience (a minimum run of frames) and a hold level.

Pure numpy. The network emits one keyword-presence probability per score frame; a detection is a
run of consecutive smoothed frames at or above the threshold that lasts at least ``min_frames``
frames, which removes one-frame blips. With a ``hold`` level below the threshold (hysteresis) the
detection then spans the whole run of frames at or above ``hold`` around it, so a slow keyword whose score
dips in the middle stays one detection. Its edges are the edges of the first and last frame.

The network looks 0.77 s ahead, so on a keyword said slowly (over a second) it is sure only once most of
the word has passed, and the detection starts late. ``start_at_onset`` moves such a start back to where the
word began: the end of the last pause before it in the track's level, if one lies within reach.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from services.kws.intervals import Detection


@dataclass(frozen=True)
class FrameTiming:
    """Where score frame ``i`` sits: centred at ``offset_ms + i * hop_ms``."""

    hop_ms: float
    offset_ms: float

    def centre_ms(self, frame: int | np.ndarray) -> float | np.ndarray:
        return self.offset_ms + frame * self.hop_ms


NO_HOLD = 1.0  # a hold ratio of one: a detection ends where the score falls below the threshold itself


@dataclass(frozen=True)
class DetectorConfig:
    threshold: float
    smoothing_frames: int = 3
    min_frames: int = 3
    hold: float | None = None  # None: the threshold itself (no hysteresis)

    @property
    def hold_level(self) -> float:
        """Where a detection's run ends: the hold level, never above the threshold."""
        return self.threshold if self.hold is None else min(self.hold, self.threshold)


@dataclass(frozen=True)
class Run:
    """A detection's frames ``first..last`` and ``qualified``, the frame where it first had ``min_frames``
    consecutive frames at or above the threshold (what a stream must have confirmed before sending it)."""

    first: int
    last: int
    qualified: int


def smooth(scores: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average over ``frames`` frames (edges averaged over what exists)."""
    if frames <= 1 or len(scores) == 0:
        return scores.astype(np.float32, copy=False)
    kernel = np.ones(frames, dtype=np.float64)
    total = np.convolve(scores.astype(np.float64), kernel, mode="same")
    count = np.convolve(np.ones(len(scores)), kernel, mode="same")
    return (total / count).astype(np.float32)


def above_threshold_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frame index of every run of True in ``flags``."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return [(int(start), int(stop) - 1) for start, stop in zip(changes[::2], changes[1::2], strict=True)]


def detection_runs(smoothed: np.ndarray, config: DetectorConfig) -> list[Run]:
    """Every run of smoothed frames at or above the hold level that holds ``min_frames`` consecutive
    frames at or above the threshold; without a hold level, the runs at or above the threshold that last
    ``min_frames``."""
    runs = []
    for first, last in above_threshold_runs(smoothed >= config.hold_level):
        high = above_threshold_runs(smoothed[first : last + 1] >= config.threshold)
        long_enough = [start for start, stop in high if stop - start + 1 >= config.min_frames]
        if long_enough:
            runs.append(Run(first, last, first + long_enough[0] + config.min_frames - 1))
    return runs


def detect(scores: np.ndarray, config: DetectorConfig, timing: FrameTiming) -> list[Detection]:
    """Detections in ms from per-frame probabilities ``scores``."""
    smoothed = smooth(scores, config.smoothing_frames)
    return [
        run_detection(run.first, run.last, float(smoothed[run.first : run.last + 1].max()), timing)
        for run in detection_runs(smoothed, config)
    ]


def run_detection(first: int, last: int, peak: float, timing: FrameTiming) -> Detection:
    """The detection of a run of frames ``first..last``: from the first frame's edge to the last one's."""
    return Detection(
        start_ms=float(timing.centre_ms(first) - timing.hop_ms / 2),
        end_ms=float(timing.centre_ms(last) + timing.hop_ms / 2),
        score=peak,
    )


@dataclass(frozen=True)
class OnsetSearch:
    """How a detection's start moves back to the word's onset (``reach_ms`` 0: it never moves).

    A frame is quiet when its level is ``quiet_db`` or more below the detection's loudest frame; ``pause_ms``
    of quiet frames in a row is the pause before the word. With no such pause within ``reach_ms`` before
    the start (words run on, or music under the speech) the start stays where the scores put it.
    """

    reach_ms: float = 0.0
    quiet_db: float = 20.0
    pause_ms: float = 30.0


def start_at_onset(
    detection: Detection, levels_db: np.ndarray, level_timing: FrameTiming, search: OnsetSearch
) -> Detection:
    """``detection`` starting where its word began: right after the nearest pause before it, within reach.

    ``levels_db`` is the track's level per frame, framed as ``level_timing`` says. The track's start is not
    a pause (a track may begin inside noise), and the start only ever moves earlier."""
    hop = level_timing.hop_ms
    first = max(0, int(np.ceil((detection.start_ms - level_timing.offset_ms) / hop)))
    last = min(len(levels_db) - 1, int(np.floor((detection.end_ms - level_timing.offset_ms) / hop)))
    if search.reach_ms <= 0 or last < first:
        return detection
    pause = max(1, int(round(search.pause_ms / hop)))
    quiet = levels_db < levels_db[first : last + 1].max() - search.quiet_db
    earliest = max(0, first - int(round(search.reach_ms / hop)) - pause)
    run = 0
    for frame in range(first - 1, earliest - 1, -1):  # walking back from the start
        run = run + 1 if quiet[frame] else 0
        if run == pause:  # frames frame .. frame + pause - 1 are the pause; the word begins after it
            start_ms = float(level_timing.centre_ms(frame + pause) - hop / 2)
            return replace(detection, start_ms=min(detection.start_ms, start_ms))
    return detection
