"""Frame scores → detections, and the numpy log-mel features against librosa."""

import librosa
import numpy as np

from services.kws.detector import DetectorConfig, FrameTiming, detect, detection_runs, smooth
from services.kws.features import HOP, N_MELS, StreamingLogMel, log_mel

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
