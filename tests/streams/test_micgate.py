"""``MicGate``: intervals in any order, the player position in, mute/unmute out; bytes ↔ time."""

from __future__ import annotations

import pytest
from earshot_client import Interval, MicGate


def test_overlapping_intervals_merge_and_the_gate_follows_the_position():
    gate = MicGate(sample_rate=16000)
    gate.add(Interval(2000, 3000, 0.9))
    gate.add(Interval(500, 900, 0.5))
    gate.add(Interval(2800, 3500, 0.7))  # extends the first
    assert gate.spans == [(500, 900), (2000, 3500)]
    changes = [(ms, gate.update(ms)) for ms in range(0, 4000, 100)]
    assert [(ms, change) for ms, change in changes if change] == [
        (500, "mute"),
        (900, "unmute"),
        (2000, "mute"),
        (3500, "unmute"),
    ]


def test_byte_offsets_map_to_time_for_stereo_44k():
    gate = MicGate(sample_rate=44100, channels=2)
    assert gate.position_ms(4 * 44100) == 1000.0
    assert gate.position_ms(4 * 44100 + 3) == 1000.0  # a partial frame is not yet played
    assert gate.byte_offset(1000.0) == 4 * 44100
    assert gate.byte_offset(0.01) == 4  # rounded up: muting never starts late
    with pytest.raises(ValueError):
        gate.position_ms(-1)
