"""The echo path b(v, x) and the calibration loss (pure pieces, no model)."""

import numpy as np

from services.kws import augment
from services.kws.__main__ import build_parser
from services.kws.calibration import PlaybackTrack, calibration_loss
from services.kws.echo import EchoPath
from services.kws.simulation import leftover_lines
from services.kws.thresholds import FALSE_WEIGHT, MISS_WEIGHT


def _speechlike(seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    n = int(seconds * 16000)
    envelope = np.repeat(rng.uniform(0, 1, n // 1600 + 1) > 0.5, 1600)[:n]
    return (rng.standard_normal(n) * 0.2 * envelope).astype(np.float32)


def test_echo_is_bounded_and_grows_more_distorted_with_volume():
    rir = augment.room_impulse_response(np.random.default_rng(0))
    x = _speechlike()
    echo = EchoPath()
    quiet = echo.apply(x, 1, rir, np.random.default_rng(1))
    loud = echo.apply(x, 10, rir, np.random.default_rng(1))
    assert quiet.shape == x.shape and np.abs(loud).max() <= 1.0
    # the AGC lifts the quiet echo, but the loud one arrives hotter before it
    assert augment.rms(loud) > augment.rms(quiet) * 0.5
    assert np.corrcoef(quiet, x)[0, 1] != np.corrcoef(loud, x)[0, 1]


def test_agc_levels_a_quiet_signal_towards_the_target_with_a_ceiling():
    echo = EchoPath()
    quiet = _speechlike() * 10 ** (-40 / 20)
    levelled = echo.agc(quiet)
    gain_db = 20 * np.log10(augment.rms(levelled) / augment.rms(quiet))
    assert 0 < gain_db <= echo.agc_max_gain_db + 0.5


def test_agc_catches_a_loud_onset_after_silence_at_once_and_lets_go_slowly():
    echo = EchoPath()

    def tone(db: float, seconds: float) -> np.ndarray:
        return np.full(int(seconds * 16000), 10 ** (db / 20), np.float32)

    def level_db(samples: np.ndarray, start_ms: int) -> float:  # 30-100 ms after start_ms
        return float(20 * np.log10(augment.rms(samples[(start_ms + 30) * 16 : (start_ms + 100) * 16])))

    after_hush = echo.agc(np.concatenate([tone(-80, 0.5), tone(-10, 0.2)]))
    assert abs(level_db(after_hush, 500) - echo.agc_target_db) < 3, "the gain falls within the attack time"
    after_loud = echo.agc(np.concatenate([tone(-10, 1.0), tone(-40, 0.5)]))
    assert level_db(after_loud, 1000) < echo.agc_target_db - 10, "the gain rises back over the release time"


def test_calibration_loss_weights_misses_over_false_alarms():
    mic = np.array([[True, False, False, True]])  # one volume, four tracks
    playback = np.array([[True, False, False, True], [False, False, False, False], [True, True, True, True]])
    loss = calibration_loss(playback, mic, miss_weight=5.0, false_weight=1.0)
    assert loss[0] == 0.0
    assert loss[1] == 5.0 * 2 / 4
    assert loss[2] == 1.0 * 2 / 4


def test_calibrate_takes_both_weights_and_defaults_to_the_calibration_rule():
    defaults = build_parser().parse_args(["calibrate"])
    assert (defaults.miss_weight, defaults.false_weight) == (MISS_WEIGHT, FALSE_WEIGHT)
    chosen = build_parser().parse_args(["calibrate", "--miss-weight", "10", "--false-weight", "2"])
    assert (chosen.miss_weight, chosen.false_weight) == (10.0, 2.0)


def test_self_trigger_report_names_the_responses_left_and_their_clean_scores():
    track = PlaybackTrack(np.zeros(16000, np.float32), "confusable", "rhvoice:pavel", "Люся |\n сказала")
    lines = leftover_lines([(track, 9, 0.252)], playback_threshold=0.33)
    assert "| rhvoice:pavel | confusable | «Люся / сказала» | 9 | 0.25 |" in lines
    assert "threshold 0.33" in lines[0]
    assert leftover_lines([], 0.33)[0].startswith("No response triggers")
