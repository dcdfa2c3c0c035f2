"""The signal half of the quality gate: is there enough clean sound to judge at all? (pure numpy)

The other half, "is it mostly a cry?", is the cry gate's probability against the threshold stored in
the ONNX metadata (analysis.py). These constants were set from the level, clipping and length
distributions of the training cries (MODEL_CARD.md reports how many real cries each rejects):
the quietest 1% of vetted Donate-a-Cry cries peak at -45 dBFS and 99% have under 0.5% clipped samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SECONDS = 1.5
# Level of the loud parts: the 95th percentile of 50 ms frame RMS, in dB relative to full scale.
MIN_LOUD_LEVEL_DBFS = -55.0
# Share of samples at or above CLIP_LEVEL (after the 8 kHz band limit) that makes a recording "clipped".
CLIP_LEVEL = 0.98
MAX_CLIPPED_FRACTION = 0.02
FRAME_SECONDS = 0.05


@dataclass(frozen=True)
class SignalQuality:
    """Measured values, and the first reason to reject (None when the signal is usable)."""

    duration_s: float
    rms_dbfs: float
    loud_level_dbfs: float
    clipped_fraction: float
    reason: str | None

    def as_dict(self) -> dict[str, float | str | None]:
        return {
            "reason": self.reason,
            "duration_s": round(self.duration_s, 3),
            "rms_dbfs": round(self.rms_dbfs, 1),
            "loud_level_dbfs": round(self.loud_level_dbfs, 1),
            "clipped_fraction": round(self.clipped_fraction, 5),
        }


def _dbfs(value: float) -> float:
    return float(20 * np.log10(max(value, 1e-10)))


def measure_signal(samples: np.ndarray, sample_rate: int) -> SignalQuality:
    """Duration, level and clipping of mono float samples, and whether they pass."""
    duration_s = len(samples) / sample_rate
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    usable = (
        samples[: len(samples) // frame * frame] if len(samples) >= frame else np.pad(samples, (0, frame))
    )
    frame_rms = np.sqrt(np.mean(usable.reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    loud_level = _dbfs(float(np.percentile(frame_rms, 95)))
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL)) if len(samples) else 0.0
    reason = None
    if duration_s < MIN_SECONDS:
        reason = "too_short"
    elif loud_level < MIN_LOUD_LEVEL_DBFS:
        reason = "too_quiet"
    elif clipped > MAX_CLIPPED_FRACTION:
        reason = "clipped"
    rms = _dbfs(float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))) if len(samples) else -200.0
    return SignalQuality(duration_s, rms, loud_level, clipped, reason)
