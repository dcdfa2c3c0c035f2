"""The streaming detector and the incremental decoders, without the network: stream equals batch."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from services.common.audio import AudioRejected, decode_audio
from services.common.stream_audio import StreamFormat, UnsupportedFormat, open_decoder
from services.gateway.settings import GatewaySettings
from services.kws.augment import change_speed
from services.kws.detector import NO_HOLD
from services.kws.enrollment import CONTEXT_OFFSETS, VoiceHead
from services.kws.playback import PLAYBACK_DIR, committed_tracks, composed_track
from services.kws.spotter import KeywordSpotter, StreamingScorer
from services.kws.streaming import StreamingDetector
from tests.audio_files import encode

DEFAULT_LOOKAHEAD_MS = GatewaySettings.model_fields["stream_lookahead_ms"].default
DEFAULT_SCAN_HOP_MS = GatewaySettings.model_fields["stream_scan_hop_ms"].default
DEFAULT_IDLE_SCAN_HOP_MS = GatewaySettings.model_fields["stream_idle_scan_hop_ms"].default


@pytest.fixture(scope="module")
def spotter() -> KeywordSpotter:
    return KeywordSpotter.load()


def within_one_hop(streamed, batch, hop_ms: float) -> bool:
    return len(streamed) == len(batch) and all(
        abs(s.start_ms - b.start_ms) <= hop_ms and abs(s.end_ms - b.end_ms) <= hop_ms
        for s, b in zip(streamed, batch, strict=True)
    )


def run(detector: StreamingDetector, samples: np.ndarray, sizes: list[int]):
    streamed, at = [], 0
    for size in sizes:
        streamed += detector.push(samples[at : at + size])
        at += size
    streamed += detector.push(samples[at:])
    return streamed, detector.finish()


@pytest.mark.parametrize("track", [*committed_tracks(), composed_track(4)], ids=lambda track: track.name)
@pytest.mark.parametrize(
    ("chunk", "lookahead_ms", "scan_hop_ms", "idle_scan_hop_ms"),
    [
        (320, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS, DEFAULT_IDLE_SCAN_HOP_MS),
        (160, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS, DEFAULT_IDLE_SCAN_HOP_MS),
        (160, DEFAULT_LOOKAHEAD_MS, 0, None),
        (333, DEFAULT_LOOKAHEAD_MS, 0, None),
        (4000, DEFAULT_LOOKAHEAD_MS, 0, None),
        (320, 40, DEFAULT_SCAN_HOP_MS, None),
        (320, DEFAULT_LOOKAHEAD_MS, 40, None),
        (320, 200, DEFAULT_SCAN_HOP_MS, None),
    ],
)
def test_stream_equals_batch_on_the_committed_samples(
    spotter, track, chunk, lookahead_ms, scan_hop_ms, idle_scan_hop_ms
):
    samples = np.frombuffer(track.pcm, "<i2").astype(np.float32) / 32768
    batch = spotter.scan_samples(samples)
    detector = StreamingDetector.with_lookahead_ms(
        spotter, lookahead_ms, scan_hop_ms, idle_scan_hop_ms=idle_scan_hop_ms
    )
    streamed, final = run(detector, samples, [chunk] * (len(samples) // chunk))
    assert final.to_json_dict() == batch.to_json_dict()
    assert within_one_hop(streamed, batch.intervals, spotter.metadata.score_hop_ms), (streamed, batch)
    assert len(batch.intervals) == len(track.keyword_spans_ms)


def test_a_slow_keywords_start_moves_to_its_onset_in_the_stream_as_in_the_batch(spotter):
    """Said slower, the keyword is detected after it began; both scans move the start back to its onset."""
    keyword = committed_tracks()[0]
    samples = change_speed(np.frombuffer(keyword.pcm, "<i2").astype(np.float32) / 32768, 0.7)
    batch = spotter.scan_samples(samples)
    from_scores = spotter.scan_scores(spotter.frame_scores(samples), batch.duration_ms)
    hop_ms = spotter.metadata.score_hop_ms  # what streamed intervals may differ by: the move is more
    assert batch.intervals[0].start_ms < from_scores.intervals[0].start_ms - hop_ms
    detector = StreamingDetector.with_lookahead_ms(spotter, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS)
    streamed, final = run(detector, samples, [320] * (len(samples) // 320))
    assert final.to_json_dict() == batch.to_json_dict()
    assert within_one_hop(streamed, batch.intervals, hop_ms), (streamed, batch)


def test_an_idle_stream_is_scanned_less_often_and_a_keyword_as_soon(spotter):
    """Idle stretches are scanned every idle hop, and the keyword's interval comes out at the same chunk."""
    samples = np.frombuffer(composed_track(2).pcm, "<i2").astype(np.float32) / 32768

    def scanned(idle_scan_hop_ms: float) -> tuple[int, list[tuple[int, int, int]]]:
        detector = StreamingDetector.with_lookahead_ms(
            spotter, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS, idle_scan_hop_ms=idle_scan_hop_ms
        )
        sent = []
        for at in range(0, len(samples), 320):
            sent += [(at, i.start_ms, i.end_ms) for i in detector.push(samples[at : at + 320])]
        return len(detector.exact), sent

    runs, sent = scanned(DEFAULT_IDLE_SCAN_HOP_MS)
    every_hop_runs, every_hop_sent = scanned(DEFAULT_SCAN_HOP_MS)
    assert sent == every_hop_sent and len(sent) == 2
    assert runs < 0.6 * every_hop_runs, (runs, every_hop_runs)


def test_irregular_chunks_give_the_same_final_answer(spotter):
    samples = np.frombuffer(committed_tracks()[0].pcm, "<i2").astype(np.float32) / 32768
    sizes = list(np.random.default_rng(7).integers(1, 3000, size=200))
    _, final = run(StreamingDetector.with_lookahead_ms(spotter, 0), samples, sizes)
    assert final.to_json_dict() == spotter.scan_samples(samples).to_json_dict()


def random_voice_head(spotter: KeywordSpotter, seed: int) -> VoiceHead:
    """A voice head of the shipped shape with random weights: its scores are arbitrary, so equal stream and
    batch scores cannot come from the shipped head's context alone."""
    channels = spotter.model.frame_embeddings(np.zeros((200, 40), np.float32)).shape[1]
    width = channels * len(CONTEXT_OFFSETS)
    rng = np.random.default_rng(seed)
    return VoiceHead(
        spotter.metadata.version,
        mean=np.zeros(width, np.float32),
        scale=np.ones(width, np.float32),
        weights=rng.normal(0, 0.2, width).astype(np.float32),
        bias=-1.0,
        threshold=0.5,
        seed=seed,
    )


def shipped_head_with_a_hold(spotter: KeywordSpotter, hold_ratio: float) -> VoiceHead:
    """The shipped 1×1 head written as a voice head (the centre frame's embeddings), with a hold level:
    real keyword scores, so the intervals a stream sends can be held against the batch scan's."""
    graph = onnx.load(str(spotter.model.path)).graph
    shipped = {item.name: onnx.numpy_helper.to_array(item) for item in graph.initializer}
    channels = shipped["head.weight"].size
    weights = np.zeros(channels * len(CONTEXT_OFFSETS), np.float32)
    centre = CONTEXT_OFFSETS.index(0) * channels
    weights[centre : centre + channels] = shipped["head.weight"].reshape(-1)
    return VoiceHead(
        spotter.metadata.version,
        mean=np.zeros(len(weights), np.float32),
        scale=np.ones(len(weights), np.float32),
        weights=weights,
        bias=float(shipped["head.bias"][0]),
        threshold=spotter.threshold,
        seed=0,
        hold_ratio=hold_ratio,
    )


@pytest.mark.parametrize("track", [*committed_tracks(), composed_track(4)], ids=lambda track: track.name)
@pytest.mark.parametrize("chunk", [320, 4000])
def test_a_held_detection_streams_as_the_batch_scan_finds_it(spotter, track, chunk):
    """With a hold level a run closes later, when the score falls below the hold: a stream still sends
    each interval once, within one frame hop of the batch scan's, and each at least as long as without."""
    voiced = spotter.with_voice(shipped_head_with_a_hold(spotter, hold_ratio=0.5))
    samples = np.frombuffer(track.pcm, "<i2").astype(np.float32) / 32768
    batch = voiced.scan_samples(samples)
    detector = StreamingDetector.with_lookahead_ms(voiced, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS)
    streamed, final = run(detector, samples, [chunk] * (len(samples) // chunk))
    assert final.to_json_dict() == batch.to_json_dict()
    assert within_one_hop(streamed, batch.intervals, spotter.metadata.score_hop_ms), (streamed, batch)
    plain = KeywordSpotter(spotter.model.with_metadata(hold_ratio=NO_HOLD)).scan_samples(samples).intervals
    assert len(batch.intervals) == len(plain) == len(track.keyword_spans_ms)
    pairs = zip(batch.intervals, plain, strict=True)
    assert all(held.start_ms <= p.start_ms and held.end_ms >= p.end_ms for held, p in pairs)


@pytest.mark.parametrize("chunk", [160, 333, 4000])
def test_a_voice_heads_streamed_scores_equal_its_batch_scores(spotter, chunk):
    voiced = spotter.with_voice(random_voice_head(spotter, seed=chunk))
    samples = np.frombuffer(composed_track(2).pcm, "<i2").astype(np.float32) / 32768
    scorer = StreamingScorer(voiced.model, voiced.head)
    streamed = [scorer.push(samples[at : at + chunk]) for at in range(0, len(samples), chunk)]
    streamed = np.concatenate([*streamed, scorer.finish()])
    np.testing.assert_allclose(streamed, voiced.frame_scores(samples), atol=1e-5)
    detector = StreamingDetector.with_lookahead_ms(voiced, DEFAULT_LOOKAHEAD_MS, DEFAULT_SCAN_HOP_MS)
    _, final = run(detector, samples, [chunk] * (len(samples) // chunk))
    assert final.to_json_dict() == voiced.scan_samples(samples).to_json_dict()
    assert final.model_version == voiced.model_version != spotter.model_version


@pytest.mark.parametrize(("container", "name"), [("ogg", "ogg_opus"), ("mp3", "mp3")])
def test_compressed_streams_decode_incrementally_like_the_batch_decoder(spotter, container, name):
    clip = decode_audio((PLAYBACK_DIR / "keyword.flac").read_bytes(), 16000).samples
    data = encode(clip, 16000, container)
    decoder = open_decoder(StreamFormat(name), 16000)
    pieces = [decoder.push(data[at : at + 517]) for at in range(0, len(data), 517)] + [decoder.finish()]
    streamed = spotter.scan_samples(np.concatenate(pieces))
    batch = spotter.scan(data)
    assert within_one_hop(streamed.intervals, batch.intervals, spotter.metadata.score_hop_ms)
    assert abs(streamed.duration_ms - batch.duration_ms) <= 100


def test_stereo_pcm_at_44k_is_averaged_and_resampled(spotter):
    clip = decode_audio((PLAYBACK_DIR / "keyword.flac").read_bytes(), 44100).samples
    stereo = (np.stack([clip, clip], axis=1) * 32767).astype("<i2").tobytes()
    decoder = open_decoder(StreamFormat("pcm_s16le", 44100, 2), 16000)
    pieces = [decoder.push(stereo[at : at + 1001]) for at in range(0, len(stereo), 1001)] + [decoder.finish()]
    streamed = spotter.scan_samples(np.concatenate(pieces))
    batch = spotter.scan((PLAYBACK_DIR / "keyword.flac").read_bytes())
    assert within_one_hop(streamed.intervals, batch.intervals, spotter.metadata.score_hop_ms)


def test_unknown_formats_and_bad_bytes_are_refused():
    with pytest.raises(UnsupportedFormat, match="unknown format"):
        open_decoder(StreamFormat("aac"), 16000)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedFormat, match="sample_rate"):
        open_decoder(StreamFormat("pcm_s16le"), 16000)
    with pytest.raises(AudioRejected, match="Ogg"):
        open_decoder(StreamFormat("ogg_opus"), 16000).push(b"not an ogg stream at all, clearly" * 4)
