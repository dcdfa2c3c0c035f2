"""The shipped model end to end: golden detections, odd input, determinism, streaming, CLI, metadata."""

import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest
import soundfile
import soxr

from services.common.audio import AudioRejected
from services.common.settings import REPO_ROOT
from services.kws import augment
from services.kws.calibration import PlaybackTrack, echo_outcomes, false_interval_floor
from services.kws.detector import NO_HOLD
from services.kws.evaluation import ScoredTrack, ScoredTracks
from services.kws.intervals import SkipInterval
from services.kws.model import MODEL_PATH, ModelMetadata, SpotterModel
from services.kws.spotter import KeywordSpotter, KwsScan, StreamingScorer
from tests.audio_files import encode, tone

SAMPLES = REPO_ROOT / "samples" / "playback"
SPANS = json.loads((SAMPLES / "spans.json").read_text())


@pytest.fixture(scope="module")
def spotter() -> KeywordSpotter:
    return KeywordSpotter.load()


def _keyword_samples() -> np.ndarray:
    samples, rate = soundfile.read(SAMPLES / "keyword.flac", dtype="float32")
    assert rate == 16000
    return samples


def test_golden_keyword_clip_has_one_interval_covering_the_span(spotter):
    scan = spotter.scan((SAMPLES / "keyword.flac").read_bytes())
    start, end = SPANS["keyword.flac"]
    assert len(scan.intervals) == 1
    interval = scan.intervals[0]
    assert interval.start_ms <= start and interval.end_ms >= end
    # edges within 50 ms of the span once the padding is taken off
    assert abs(interval.start_ms + spotter.padding.before_ms - start) <= 50
    assert abs(interval.end_ms - spotter.padding.after_ms - end) <= 50
    assert interval.score >= scan.threshold


@pytest.mark.parametrize("name", ["confusable.flac", "neither.flac"])
def test_golden_clips_without_the_keyword_have_no_interval(spotter, name):
    scan = spotter.scan((SAMPLES / name).read_bytes())
    assert scan.intervals == []
    assert scan.duration_ms > 2000


def test_json_shape(spotter):
    payload = spotter.scan((SAMPLES / "keyword.flac").read_bytes()).to_json_dict()
    assert set(payload) == {"duration_ms", "intervals", "model_version", "threshold"}
    assert set(payload["intervals"][0]) == {"start_ms", "end_ms", "score"}
    assert payload["model_version"] == spotter.metadata.version


@pytest.mark.parametrize(
    ("rate", "channels", "container"),
    [
        (44100, 2, "wav"),
        (8000, 1, "wav"),
        (22050, 1, "flac"),
        (48000, 1, "ogg"),
        (44100, 1, "mp3"),
        (24000, 1, "m4a"),
    ],
)
def test_other_rates_channels_and_formats_give_the_same_interval(spotter, rate, channels, container):
    samples = soxr.resample(_keyword_samples(), 16000, rate).astype(np.float32)
    if channels == 2:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.stack([samples, samples], axis=1), rate, format="WAV")
        data = buffer.getvalue()
    else:
        data = encode(samples, rate, container)
    scan = spotter.scan(data)
    start, end = SPANS["keyword.flac"]
    assert len(scan.intervals) == 1
    # Codecs add their own delay and 8 kHz drops the upper band: allow a little more than the clean clip.
    assert scan.intervals[0].start_ms <= start + 40 and scan.intervals[0].end_ms >= end - 40


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "empty"), (b"this is not audio at all" * 10, "not_audio"), (b"RIFF\x00\x00garbage", "corrupt")],
)
def test_bad_input_is_rejected(spotter, data, code):
    with pytest.raises(AudioRejected) as error:
        spotter.scan(data)
    assert error.value.code == code


def test_silence_and_tone_give_no_interval(spotter):
    assert spotter.scan(encode(np.zeros(16000, np.float32), 16000, "wav")).intervals == []
    assert spotter.scan(encode(tone(3.0), 16000, "wav")).intervals == []


def test_very_short_input_scans_without_error(spotter):
    scan = spotter.scan(encode(tone(0.01), 16000, "wav"))
    assert scan == KwsScan(10, [], spotter.metadata.version, spotter.threshold)


def test_deterministic_and_thread_safe(spotter):
    data = (SAMPLES / "keyword.flac").read_bytes()
    first = spotter.scan(data)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(spotter.scan, [data] * 8))
    assert all(result == first for result in results)


def test_streaming_scores_equal_the_offline_scan(spotter):
    samples = _keyword_samples()
    offline = spotter.frame_scores(samples)
    scorer = StreamingScorer(spotter.model)
    chunks = [scorer.push(chunk) for chunk in np.array_split(samples, 17)] + [scorer.finish()]
    assert np.allclose(np.concatenate(chunks), offline, atol=1e-5)


def test_metadata_holds_the_facts_and_the_file_is_small():
    assert MODEL_PATH.stat().st_size < 10 * 1024 * 1024
    metadata = SpotterModel().metadata
    assert metadata.keyword == "Маруся"
    assert metadata.sample_rate == 16000
    assert metadata.score_hop_ms == 20.0
    assert 0.0 <= metadata.playback_threshold <= 1.0 and 0.0 < metadata.mic_threshold < 1.0
    assert 0.0 < metadata.hold_ratio <= 1.0
    keys = {entry.key for entry in onnx.load(str(MODEL_PATH), load_external_data=False).metadata_props}
    assert "earshot_kws" in keys


def test_cli_scan_prints_one_json_line_per_file():
    files = [str(SAMPLES / name) for name in ("keyword.flac", "neither.flac")]
    output = subprocess.run(
        [sys.executable, "-m", "services.kws", "scan", *files, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout.splitlines()
    lines = [json.loads(line) for line in output]
    assert [line["file"] for line in lines] == files
    assert len(lines[0]["intervals"]) == 1 and lines[1]["intervals"] == []


def test_a_model_written_before_the_hold_ratio_holds_at_its_threshold():
    values = json.loads(SpotterModel().session.get_modelmeta().custom_metadata_map["earshot_kws"])
    del values["hold_ratio"]
    older = ModelMetadata.from_onnx({"earshot_kws": json.dumps(values)})
    assert older.hold_ratio == NO_HOLD
    spotter = KeywordSpotter(SpotterModel().with_metadata(hold_ratio=older.hold_ratio))
    assert spotter.detector(0.4).hold_level == 0.4


def test_the_detector_holds_at_the_models_hold_ratio_of_any_threshold(spotter):
    for threshold in (0.2, spotter.threshold):
        config = spotter.detector(threshold)
        assert config.threshold == threshold
        assert config.hold_level == pytest.approx(threshold * spotter.metadata.hold_ratio)


def test_the_models_hold_joins_a_keyword_whose_score_dips_mid_word(spotter):
    """Scores that dip below the threshold mid-word: without a hold they make two intervals that each
    cover half the word; with the model's hold ratio, one over the whole of it, and nothing more."""
    word = np.array([0.9] * 10 + [0.3] * 20 + [0.9] * 10, np.float32)  # a dip longer than the padding
    scores = np.concatenate([np.zeros(50, np.float32), word, np.zeros(50, np.float32)])
    duration_ms = int(len(scores) * spotter.metadata.score_hop_ms)
    held, unheld = (
        KeywordSpotter(spotter.model.with_metadata(hold_ratio=ratio)).scan_scores(scores, duration_ms, 0.5)
        for ratio in (0.3, NO_HOLD)
    )
    assert len(unheld.intervals) == 2 and len(held.intervals) == 1
    (whole,) = held.intervals
    # one hold-level frame of the smoothed edges more on each side (3-frame smoothing): 20 ms
    assert whole.start_ms == unheld.intervals[0].start_ms - spotter.metadata.score_hop_ms
    assert whole.end_ms == unheld.intervals[1].end_ms + spotter.metadata.score_hop_ms


def test_echo_outcomes_mute_by_each_thresholds_intervals(spotter):
    keyword = _keyword_samples()
    track = PlaybackTrack(keyword, "keyword", "sample", "Маруся")
    duration_ms = len(keyword) // 16
    whole = KwsScan(duration_ms, [SkipInterval(0, duration_ms, 1.0)], spotter.model_version, 0.1)
    nothing = KwsScan(duration_ms, [], spotter.model_version, 0.9)
    rng = np.random.default_rng(5)
    rirs = [augment.room_impulse_response(rng)]
    unmuted, muted = echo_outcomes(spotter, [track], rirs, {0.1: [whole], 0.9: [nothing]}, rng)
    assert unmuted.shape == (10, 1) and unmuted.sum() >= 5, "the keyword's echo wakes the microphone"
    assert not muted[0.1].any(), "a track muted from start to end cannot wake it"
    assert (muted[0.9] == unmuted).all(), "with no interval the microphone hears what it hears unmuted"


def _plateau(peak: float, frames: int = 300) -> ScoredTrack:
    """Frame scores that sit at ``peak`` for half a second in the middle of a 6 s track."""
    scores = np.zeros(frames, np.float32)
    scores[125:150] = peak
    return ScoredTrack(scores, duration_ms=frames * 20)


def test_the_calibration_floor_counts_only_the_keyword_free_speech(spotter):
    """The floor sits just above the keyword-free speech's false interval, whatever the keyword and confusable
    tracks score, and rises only when the speech is too short for that interval to be within budget."""
    voices = [
        ScoredTracks("a", [_plateau(0.95)], [_plateau(0.85)], _plateau(0.42), 0.0, 6.0),
        ScoredTracks("b", [_plateau(0.95)], [], _plateau(0.0), 0.0, 6.0),
    ]
    floor = false_interval_floor(spotter, voices)
    assert floor.speech_hours == pytest.approx(12 / 3600)
    assert floor.threshold == 0.43
    assert floor.false_intervals[43:].sum() == 0 and floor.false_intervals[42] == 1
    hours_of_speech = [ScoredTracks("c", [], [], _plateau(0.42, frames=180_000 * 10), 0.0, 3600.0)]
    assert false_interval_floor(spotter, hours_of_speech).threshold == 0.0  # 1 in 10 h is within budget
