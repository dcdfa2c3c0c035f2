"""Interval arithmetic: padding, clamping, merging, and byte offsets ↔ time."""

import pytest

from services.kws.intervals import (
    Detection,
    Padding,
    PcmFormat,
    SkipInterval,
    detections_to_intervals,
    merge_overlapping,
    pad_and_clamp,
)
from services.kws.spotter import KwsScan


def test_padding_widens_and_rounds_outwards():
    interval = pad_and_clamp(Detection(1000.4, 1500.2, 0.9), Padding(100, 150), duration_ms=5000)
    assert interval == SkipInterval(900, 1651, 0.9)


def test_clamped_to_the_track():
    assert pad_and_clamp(Detection(30, 400, 0.8), Padding(100, 100), 450) == SkipInterval(0, 450, 0.8)


def test_overlapping_and_touching_merge_non_overlapping_stay():
    merged = merge_overlapping(
        [
            SkipInterval(900, 1200, 0.7),
            SkipInterval(100, 300, 0.6),
            SkipInterval(250, 500, 0.9),
            SkipInterval(500, 600, 0.5),
        ]
    )
    assert merged == [SkipInterval(100, 600, 0.9), SkipInterval(900, 1200, 0.7)]


def test_gap_merging():
    intervals = [SkipInterval(0, 100, 0.5), SkipInterval(150, 200, 0.6)]
    assert merge_overlapping(intervals, max_gap_ms=49) == intervals
    assert merge_overlapping(intervals, max_gap_ms=50) == [SkipInterval(0, 200, 0.6)]


def test_detections_to_intervals_pads_merges_and_clamps():
    detections = [Detection(50, 600, 0.8), Detection(700, 1200, 0.95), Detection(2900, 2990, 0.7)]
    intervals = detections_to_intervals(detections, Padding(100, 100), duration_ms=3000)
    assert intervals == [SkipInterval(0, 1300, 0.95), SkipInterval(2800, 3000, 0.7)]


def test_detection_entirely_past_the_end_is_dropped():
    assert detections_to_intervals([Detection(3100, 3200, 0.9)], Padding(0, 0), duration_ms=3000) == []


@pytest.mark.parametrize(
    ("pcm", "offset", "ms"),
    [
        (PcmFormat(16000, 1, 2), 32000, 1000.0),
        (PcmFormat(44100, 2, 2), 176400, 1000.0),
        (PcmFormat(48000, 2, 4), 384, 1.0),
        (PcmFormat(16000, 1, 2), 33, 1.0),  # 16 whole frames; the half frame is not played yet
    ],
)
def test_byte_offset_to_ms(pcm, offset, ms):
    assert pcm.byte_offset_to_ms(offset) == pytest.approx(ms)


def test_ms_to_byte_offset_is_frame_aligned_and_never_late():
    pcm = PcmFormat(44100, 2, 2)
    offset = pcm.ms_to_byte_offset(1.0)  # 44.1 frames → the 45th frame
    assert offset == 45 * 4
    assert pcm.byte_offset_to_ms(offset) >= 1.0
    assert PcmFormat(16000).ms_to_byte_offset(1000) == 32000


def test_bytes_time_round_trip():
    pcm = PcmFormat(22050, 2, 2)
    for frame in (0, 1, 999, 22050, 1234567):
        offset = frame * pcm.bytes_per_frame
        assert pcm.ms_to_byte_offset(pcm.byte_offset_to_ms(offset)) == offset


def test_negative_positions_rejected():
    with pytest.raises(ValueError):
        PcmFormat(16000).byte_offset_to_ms(-2)
    with pytest.raises(ValueError):
        PcmFormat(16000).ms_to_byte_offset(-1)


def test_a_scan_mutes_for_the_length_of_its_merged_intervals():
    overlapping = [Detection(1000.0, 1500.0, 0.9), Detection(1400.0, 2000.0, 0.8)]
    detections = [*overlapping, Detection(5000.0, 5200.0, 0.7)]
    intervals = detections_to_intervals(detections, Padding(before_ms=100, after_ms=150), duration_ms=5300)
    scan = KwsScan(duration_ms=5300, intervals=intervals, model_version="test", threshold=0.5)
    assert scan.muted_ms == (2150 - 900) + (5300 - 4900)  # the overlap counted once, the end clamped
    assert KwsScan(5300, [], "test", 0.5).muted_ms == 0
