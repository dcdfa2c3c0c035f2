"""Signal checks of the quality gate, on synthetic signals at the gate's own limits."""

import numpy as np

from services.classifier import gate
from tests.audio_files import tone

RATE = 8000


def test_a_normal_recording_passes() -> None:
    quality = gate.measure_signal(tone(5.0, RATE, 440.0, level=0.3), RATE)
    assert quality.reason is None
    assert abs(quality.duration_s - 5.0) < 1e-6


def test_too_short() -> None:
    assert gate.measure_signal(tone(gate.MIN_SECONDS - 0.1, RATE), RATE).reason == "too_short"


def test_silence_and_near_silence_are_too_quiet() -> None:
    assert gate.measure_signal(np.zeros(5 * RATE, dtype=np.float32), RATE).reason == "too_quiet"
    faint = tone(5.0, RATE, 440.0, level=10 ** ((gate.MIN_LOUD_LEVEL_DBFS - 6) / 20))
    assert gate.measure_signal(faint, RATE).reason == "too_quiet"


def test_clipped() -> None:
    clipped = np.clip(tone(5.0, RATE, 440.0, level=3.0), -1, 1)
    quality = gate.measure_signal(clipped, RATE)
    assert quality.reason == "clipped"
    assert quality.clipped_fraction > gate.MAX_CLIPPED_FRACTION
