"""Frame scores → detections, and the numpy log-mel features against librosa."""

import librosa
import numpy as np

from services.kws.detector import (
    DetectorConfig,
    FrameTiming,
    OnsetSearch,
    detect,
    detection_runs,
    smooth,
    start_at_onset,
)
from services.kws.features import HOP, N_MELS, StreamingLogMel, log_mel
from services.kws.intervals import Detection

TIMING = FrameTiming(hop_ms=20.0, offset_ms=12.5)


def test_run_above_threshold_becomes_one_detection_with_frame_edges():
    scores = np.zeros(50, np.float32)
    scores[10:20] = 0.9
    (detection,) = detect(scores, DetectorConfig(threshold=0.5, smoothing_frames=1, min_frames=3), TIMING)
    assert detection.start_ms == 12.5 + 10 * 20 - 10
    assert detection.end_ms == 12.5 + 19 * 20 + 10
    assert detection.score == np.float32(0.9)


def test_patience_drops_short_blips_and_smoothing_bridges_dips():
    scores = np.zeros(60, np.float32)
    scores[5:7] = 0.95  # two frames: shorter than min_frames
    scores[20:30] = 0.9
    scores[25] = 0.3  # a one-frame dip inside a run
    detections = detect(scores, DetectorConfig(threshold=0.5, smoothing_frames=3, min_frames=3), TIMING)
    assert len(detections) == 1
    assert detections[0].start_ms < 12.5 + 20 * 20 < detections[0].end_ms


def test_nothing_above_threshold_nothing_detected():
    assert detect(np.full(100, 0.49, np.float32), DetectorConfig(0.5), TIMING) == []
    assert detect(np.zeros(0, np.float32), DetectorConfig(0.5), TIMING) == []


def test_smoothing_keeps_constant_signals():
    assert np.allclose(smooth(np.full(10, 0.7, np.float32), 5), 0.7)


def test_log_mel_matches_librosa():
    samples = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    ours = log_mel(samples)
    # librosa frames 512 samples with the 400-sample window centred: shift by 56 to get our framing.
    reference = librosa.feature.melspectrogram(
        y=np.concatenate([np.zeros(56, np.float32), samples]),
        sr=16000,
        n_fft=512,
        win_length=400,
        hop_length=HOP,
        window="hann",
        center=False,
        power=2.0,
        n_mels=N_MELS,
        fmin=40.0,
        fmax=7800.0,
        htk=True,
        norm=None,
    )
    assert ours.shape == (98, N_MELS)
    assert np.allclose(ours, np.log(reference.T + 1e-6), atol=1e-3)


def test_streaming_features_equal_whole_track():
    samples = np.random.default_rng(1).standard_normal(23456).astype(np.float32)
    streaming = StreamingLogMel()
    chunks = [streaming.push(chunk) for chunk in np.array_split(samples, [100, 101, 5000, 5399, 17000])]
    assert np.allclose(np.concatenate(chunks), log_mel(samples), atol=1e-5)


def test_a_hold_level_keeps_a_dipping_keyword_one_detection_over_the_whole_run():
    """A slow keyword's score dips in the middle: at the threshold alone it is two detections, each short of
    the word; with a hold level the run around the frames at the threshold is one detection."""
    scores = np.zeros(60, np.float32)
    scores[10:18] = 0.9
    scores[18:26] = 0.6  # the dip: under the threshold, over the hold level
    scores[26:32] = 0.9
    scores[32:36] = 0.6  # the tail
    plain = DetectorConfig(threshold=0.8, smoothing_frames=1, min_frames=3)
    held = DetectorConfig(threshold=0.8, smoothing_frames=1, min_frames=3, hold=0.4)
    assert len(detect(scores, plain, TIMING)) == 2
    (detection,) = detect(scores, held, TIMING)
    assert detection.start_ms == 12.5 + 10 * 20 - 10
    assert detection.end_ms == 12.5 + 35 * 20 + 10
    (run,) = detection_runs(scores, held)
    assert (run.first, run.last, run.qualified) == (10, 35, 12)


def test_a_run_only_at_the_hold_level_is_no_detection_and_no_hold_is_the_threshold():
    scores = np.zeros(40, np.float32)
    scores[5:25] = 0.6
    scores[30:32] = 0.9  # over the threshold, but shorter than the patience
    assert detect(scores, DetectorConfig(0.8, 1, 3, hold=0.4), TIMING) == []
    assert DetectorConfig(0.8).hold_level == DetectorConfig(0.8, hold=0.95).hold_level == 0.8
    steady = np.where(np.arange(40) % 9 < 6, 0.9, 0.1).astype(np.float32)
    at_threshold = DetectorConfig(0.5, hold=0.5)
    assert detect(steady, at_threshold, TIMING) == detect(steady, DetectorConfig(0.5), TIMING)


LEVELS = FrameTiming(hop_ms=10.0, offset_ms=0.0)  # level frame k centred at 10 k ms
SEARCH = OnsetSearch(reach_ms=1000.0, quiet_db=30.0, pause_ms=30.0)


def word_levels(pause_before: range, words: list[range], frames: int = 300) -> np.ndarray:
    """-80 dB everywhere but the ``words`` (frame ranges) at -20 dB; ``pause_before`` stays quiet."""
    levels = np.full(frames, -80.0, np.float32)
    for word in words:
        levels[word] = -20.0
    levels[pause_before] = -80.0
    return levels


def test_a_late_start_moves_back_to_the_end_of_the_pause_before_the_word():
    levels = word_levels(range(90, 100), [range(0, 90), range(100, 250)])  # a word from frame 100
    late = Detection(start_ms=180.0 * 10, end_ms=240.0 * 10, score=0.9)
    moved = start_at_onset(late, levels, LEVELS, SEARCH)
    assert moved.start_ms == 100 * 10 - 5  # the first frame's edge after the pause
    assert (moved.end_ms, moved.score) == (late.end_ms, late.score)


def test_no_pause_within_reach_or_reach_zero_leaves_the_start_alone():
    levels = word_levels(range(0, 20), [range(20, 300)])  # the only pause is 1.5 s before the start
    late = Detection(start_ms=170.0 * 10, end_ms=250.0 * 10, score=0.9)
    assert start_at_onset(late, levels, LEVELS, SEARCH) == late
    assert start_at_onset(late, levels, LEVELS, OnsetSearch(reach_ms=0.0)) == late


def test_a_pause_shorter_than_pause_ms_is_inside_the_word_and_the_track_start_is_no_pause():
    levels = word_levels(range(50, 52), [range(0, 200)])  # a 20 ms dip: a closure, not a pause
    late = Detection(start_ms=80.0 * 10, end_ms=150.0 * 10, score=0.9)
    assert start_at_onset(late, levels, LEVELS, SEARCH) == late
    levels[50:53] = -80.0  # 30 ms: a pause
    assert start_at_onset(late, levels, LEVELS, SEARCH).start_ms == 53 * 10 - 5


def test_quiet_is_relative_to_the_detection_and_the_start_never_moves_later():
    levels = np.full(300, -20.0, np.float32)
    levels[60:70] = -35.0  # 25 dB below the detection's loudest: a soft sound, not a pause
    levels[100:300] = -10.0
    late = Detection(start_ms=150.0 * 10, end_ms=200.0 * 10, score=0.9)
    assert start_at_onset(late, levels, LEVELS, SEARCH) == late
    levels[60:70] = -45.0  # 35 dB below: a pause
    assert start_at_onset(late, levels, LEVELS, SEARCH).start_ms == 70 * 10 - 5
    levels[148:151] = -80.0  # a pause ending on the start's own frame
    off_edge = Detection(start_ms=1503.0, end_ms=2000.0, score=0.9)
    assert start_at_onset(off_edge, levels, LEVELS, SEARCH) == off_edge
