"""The echo path b(v, x) and the calibration loss (pure pieces, no model)."""

import numpy as np

from services.kws import augment
from services.kws.__main__ import build_parser
from services.kws.calibration import EchoAgreement, PlaybackTrack, muted_echo
from services.kws.echo import EchoPath
from services.kws.intervals import SkipInterval
from services.kws.simulation import (
    ThresholdOutcome,
    keyword_muting,
    kind_rates_line,
    leftover_lines,
    self_trigger_interval,
    self_trigger_rows,
    trade_off_lines,
)
from services.kws.spotter import KwsScan
from services.kws.thresholds import FALSE_WEIGHT, MISS_WEIGHT, calibration_loss


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
    missed = np.array([[[False] * 4], [[True, False, False, True]], [[False] * 4]])  # muting covers it
    agreement = EchoAgreement(playback, mic, missed)
    loss = calibration_loss(agreement.missed, agreement.false_alarms, miss_weight=5.0, false_weight=1.0)
    assert loss[0] == 0.0
    assert loss[1] == 5.0 * 2 / 4
    assert loss[2] == 1.0 * 2 / 4


def test_an_interval_elsewhere_in_the_track_is_a_miss_not_agreement():
    """The playback side fires on the track, but its interval leaves what the microphone hears unmuted."""
    mic = np.array([[True]])
    playback = np.array([[True]])
    agreement = EchoAgreement(playback, mic, missed=np.array([[[True]]]))
    assert agreement.missed.all() and not agreement.false_alarms.any()
    loss = calibration_loss(agreement.missed, agreement.false_alarms, miss_weight=5.0, false_weight=1.0)
    assert loss[0] == 5.0


def test_calibrate_takes_both_weights_and_defaults_to_the_calibration_rule():
    defaults = build_parser().parse_args(["calibrate"])
    assert (defaults.miss_weight, defaults.false_weight) == (MISS_WEIGHT, FALSE_WEIGHT)
    chosen = build_parser().parse_args(["calibrate", "--miss-weight", "10", "--false-weight", "2"])
    assert (chosen.miss_weight, chosen.false_weight) == (10.0, 2.0)


def test_self_trigger_report_names_the_responses_left_and_their_clean_scores():
    track = PlaybackTrack(np.zeros(16000, np.float32), "confusable", "rhvoice:pavel", "Люся |\n сказала")
    lines = leftover_lines([(track, 9, 0.252)], playback_threshold=0.33)
    assert "| rhvoice:pavel | with a confusable | «Люся / сказала» | 9 | 0.25 |" in lines
    assert "threshold 0.33" in lines[0]
    assert leftover_lines([], 0.33)[0].startswith("No response triggers")


def test_muting_zeroes_only_inside_the_spans_and_leaves_the_echo_untouched():
    heard = np.ones(16000, np.float32)
    muted = muted_echo(heard, ((100, 200), (900, 1000)), sample_rate=16000)
    assert muted[100 * 16 : 200 * 16].max() == 0 and muted[900 * 16 :].max() == 0
    assert muted[:1600].min() == 1 and muted[200 * 16 : 900 * 16].min() == 1
    assert heard.min() == 1, "every threshold mutes its own copy of the same echo"


def test_self_trigger_rows_count_the_muted_responses_by_kind():
    tracks = [
        PlaybackTrack(np.zeros(16, np.float32), kind, "v", "t")
        for kind in ("keyword", "confusable", "speech")
    ]
    unmuted = np.ones((10, 3), bool)
    muted = np.zeros((10, 3), bool)
    muted[9, 1] = True
    rows = self_trigger_rows(tracks, unmuted, muted)
    assert [row["volume"] for row in rows] == list(range(1, 11))
    assert rows[0] == {
        "volume": 1,
        "unmuted": 1.0,
        "muted": 0.0,
        "muted_keyword": 0,
        "muted_confusable": 0,
        "muted_speech": 0,
    }
    assert rows[9]["muted"] == 1 / 3 and rows[9]["muted_confusable"] == 1


def test_kind_rates_divide_each_kinds_triggers_by_its_own_plays():
    kinds = ["keyword", "confusable", "confusable", "speech"]
    rows = [
        {"muted_keyword": 0, "muted_confusable": 1 if volume == 1 else 0, "muted_speech": 0}
        for volume in range(10)
    ]
    line = kind_rates_line(rows, kinds)
    assert "with a confusable 5.000%" in line  # 1 of 2 responses x 10 volumes
    assert "with the keyword 0.000%" in line and "keyword-free 0.000%" in line


def test_trade_off_table_marks_the_calibrated_threshold_and_counts_responses_once():
    muted = np.zeros((10, 4), bool)
    muted[:, 0] = True  # one response at every volume
    shares = {"all": 0.05, "keyword": 0.2, "confusable": 0.01, "speech": 0.0}
    outcomes = [ThresholdOutcome(0.1, muted, shares), ThresholdOutcome(0.33, np.zeros_like(muted), shares)]
    lines = trade_off_lines(outcomes, calibrated=0.33)
    assert "| 0.10 | 25.000% | 1 | 5.00% | 20.00% | 1.00% | 0.00% |" in lines
    assert any(line.startswith("| **0.33** (calibrated) | 0.000% | 0 |") for line in lines)


def test_keyword_muting_sets_the_spans_share_of_all_playback_beside_what_the_intervals_mute():
    one_second = np.zeros(16000, np.float32)
    tracks = [
        PlaybackTrack(np.tile(one_second, 4), "keyword", "v", "Маруся", keyword_span_ms=(1000, 1600)),
        PlaybackTrack(np.tile(one_second, 2), "keyword", "v", "Маруся", keyword_span_ms=(500, 900)),
        PlaybackTrack(np.tile(one_second, 4), "speech", "v", "t"),
    ]
    scans = [
        KwsScan(4000, [SkipInterval(900, 1750, 1.0)], "m", 0.5),
        KwsScan(2000, [SkipInterval(400, 1050, 1.0)], "m", 0.5),
        KwsScan(4000, [SkipInterval(0, 300, 0.6)], "m", 0.5),
    ]
    muting = keyword_muting(tracks, scans)
    assert muting.span_share == (600 + 400) / 10_000, "the floor counts the spans, not the intervals"
    assert (muting.mean_span_ms, muting.mean_muted_ms) == (500, 750), "keyword-free ones count in neither"


def test_the_self_trigger_interval_resamples_voices_so_one_voices_failures_stay_uncertain():
    tracks = [PlaybackTrack(np.zeros(16, np.float32), "speech", voice, "t") for voice in "aabbcc"]
    one_voice = np.zeros((10, 6), bool)
    one_voice[:, :2] = True  # voice a's two responses at every volume: a third of the echoes
    assert self_trigger_interval(tracks, one_voice, seed=0) == (0.0, 1.0)
    every_voice = np.zeros((10, 6), bool)
    every_voice[:, ::2] = True  # one response of each voice
    assert self_trigger_interval(tracks, every_voice, seed=0) == (0.5, 0.5)
