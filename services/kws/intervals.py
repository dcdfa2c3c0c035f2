"""``skip_kws`` intervals: padding, merging, clamping, and player position in bytes ↔ time.

Pure arithmetic, no I/O. The client mutes its microphone inside each interval, so an interval must
cover the whole keyword with some margin (padding), overlapping intervals are merged into one, and
nothing may fall outside the track. The client knows its player position as a byte offset into the
PCM it feeds the audio device; ``PcmFormat`` converts that to and from milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SkipInterval:
    """Mute the microphone from ``start_ms`` to ``end_ms`` of the track; ``score`` is the detector's peak."""

    start_ms: int
    end_ms: int
    score: float

    def to_json_dict(self) -> dict[str, int | float]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Detection:
    """Where the detector heard the keyword, in (fractional) milliseconds, before any padding."""

    start_ms: float
    end_ms: float
    score: float


@dataclass(frozen=True)
class Padding:
    """Margins added before and after each detection; the worst-case timing error of the detector."""

    before_ms: int
    after_ms: int


def pad_and_clamp(detection: Detection, padding: Padding, duration_ms: int) -> SkipInterval:
    """One detection widened by the padding, rounded outwards to whole ms and kept inside the track."""
    start = max(0, int(detection.start_ms - padding.before_ms))
    end_raw = detection.end_ms + padding.after_ms
    end = min(duration_ms, int(end_raw) + (0 if end_raw == int(end_raw) else 1))
    return SkipInterval(start_ms=start, end_ms=max(start, end), score=detection.score)


def merge_overlapping(intervals: Iterable[SkipInterval], max_gap_ms: int = 0) -> list[SkipInterval]:
    """Sorted intervals where any two that overlap or are at most ``max_gap_ms`` apart become one."""
    merged: list[SkipInterval] = []
    for interval in sorted(intervals, key=lambda item: (item.start_ms, item.end_ms)):
        if merged and interval.start_ms - merged[-1].end_ms <= max_gap_ms:
            last = merged[-1]
            merged[-1] = SkipInterval(
                start_ms=last.start_ms,
                end_ms=max(last.end_ms, interval.end_ms),
                score=max(last.score, interval.score),
            )
        else:
            merged.append(interval)
    return merged


def detections_to_intervals(
    detections: Iterable[Detection], padding: Padding, duration_ms: int, max_gap_ms: int = 0
) -> list[SkipInterval]:
    """The ``skip_kws`` answer for one track: padded, clamped, then merged."""
    padded = [pad_and_clamp(detection, padding, duration_ms) for detection in detections]
    return [
        interval for interval in merge_overlapping(padded, max_gap_ms) if interval.end_ms > interval.start_ms
    ]


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved linear PCM as the client's player consumes it."""

    sample_rate: int
    channels: int = 1
    sample_width: int = 2  # bytes per sample of one channel

    @property
    def bytes_per_frame(self) -> int:
        return self.channels * self.sample_width

    def byte_offset_to_ms(self, offset: int) -> float:
        """Player time (ms) at byte ``offset``; a partial frame counts as not yet played."""
        if offset < 0:
            raise ValueError("byte offset must not be negative")
        return (offset // self.bytes_per_frame) * 1000.0 / self.sample_rate

    def ms_to_byte_offset(self, ms: float) -> int:
        """Byte offset of the first whole frame at or after ``ms``, so muting never starts late."""
        if ms < 0:
            raise ValueError("time must not be negative")
        frames = -(-round(ms * self.sample_rate * 1000) // 1_000_000)  # ceil without float error
        return frames * self.bytes_per_frame
