"""Evaluation on whole held-out voices: recall, false intervals per hour, edge timing, real-time factor.

Each voice yields (a) positive tracks, a keyword inside carrier speech with its exact span, (b)
confusable tracks, and (c) one long keyword-free track of all its sayings. Frame scores are computed
once per track; thresholds are then swept without re-running the network. Confidence intervals come
from a bootstrap over voices, since recall is correlated within a voice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from services.kws.features import SAMPLE_RATE, frame_levels_db, log_mel
from services.kws.intervals import SkipInterval
from services.kws.spotter import KeywordSpotter

if TYPE_CHECKING:  # the dataset module brings the training-only augmentation libraries
    from services.kws.dataset import VoiceAudio

MARGIN_S = 0.5
# What a track goes through before it is scored, e.g. ``dataset.Augmenter`` or ``dataset.OverMusic``.
Channel = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass
class Track:
    samples: np.ndarray
    span_ms: tuple[float, float] | None = None  # the keyword's span, for positives


@dataclass
class VoiceTracks:
    key: str
    positives: list[Track] = field(default_factory=list)
    confusables: list[Track] = field(default_factory=list)
    speech: Track | None = None


def _margin(audio: np.ndarray) -> np.ndarray:
    silence = np.zeros(int(MARGIN_S * SAMPLE_RATE), np.float32)
    return np.concatenate([silence, audio, silence])


def voice_tracks(voice: VoiceAudio, rng: np.random.Generator, augmenter: Channel | None) -> VoiceTracks:
    """Tracks of one voice; ``augmenter`` (or None for clean audio) is applied to each track."""
    from services.kws.dataset import compose, keyword_speed

    def channel(audio: np.ndarray) -> np.ndarray:
        return augmenter(audio, rng) if augmenter else audio

    tracks = VoiceTracks(voice.key)
    for keyword in voice.keywords:
        audio, (start, end) = compose(
            keyword, voice, rng, keyword_speed(keyword, voice, rng) if not voice.natural else 1.0
        )
        offset = MARGIN_S * 1000
        span = (start * 1000 / SAMPLE_RATE + offset, end * 1000 / SAMPLE_RATE + offset)
        tracks.positives.append(Track(channel(_margin(audio)), span))
    for confusable in voice.confusables:
        audio, _ = compose(confusable, voice, rng)
        tracks.confusables.append(Track(channel(_margin(audio))))
    pause = np.zeros(int(0.4 * SAMPLE_RATE), np.float32)
    speech = np.concatenate([part for saying in voice.sayings for part in (saying, pause)])
    tracks.speech = Track(channel(speech))
    return tracks


@dataclass(frozen=True)
class ScoredTrack:
    """One track's frame scores and length, and its level per feature frame, with which the scan moves a
    detection's start to the word's onset (None: not known; starts stay where the scores put them)."""

    scores: np.ndarray
    duration_ms: int
    levels_db: np.ndarray | None = None
    span_ms: tuple[float, float] | None = None  # the keyword's span, for positives


@dataclass
class ScoredTracks:
    """Frame scores of every track of one voice."""

    key: str
    positives: list[ScoredTrack]
    confusables: list[ScoredTrack]
    speech: ScoredTrack
    scan_seconds: float  # wall time of feature extraction + network over the speech track
    audio_seconds: float


def score_track(spotter: KeywordSpotter, track: Track) -> ScoredTrack:
    features = log_mel(track.samples)
    return ScoredTrack(
        spotter.feature_scores(features),
        int(len(track.samples) * 1000 // SAMPLE_RATE),
        frame_levels_db(features),
        track.span_ms,
    )


def score_voice(spotter: KeywordSpotter, tracks: VoiceTracks) -> ScoredTracks:
    started = time.perf_counter()
    speech = score_track(spotter, tracks.speech)
    scan_seconds = time.perf_counter() - started
    return ScoredTracks(
        key=tracks.key,
        positives=[score_track(spotter, track) for track in tracks.positives],
        confusables=[score_track(spotter, track) for track in tracks.confusables],
        speech=speech,
        scan_seconds=scan_seconds,
        audio_seconds=len(tracks.speech.samples) / SAMPLE_RATE,
    )


def intervals_at(spotter: KeywordSpotter, track: ScoredTrack, threshold: float) -> list[SkipInterval]:
    return spotter.scan_scores(track.scores, track.duration_ms, threshold, track.levels_db).intervals


@dataclass
class VoiceResult:
    key: str
    occurrences: int
    caught: int
    confusable_tracks: int
    confusable_false: int
    speech_hours: float
    speech_false: int
    start_errors_ms: list[float]
    end_errors_ms: list[float]


def evaluate_voice(spotter: KeywordSpotter, scored: ScoredTracks, threshold: float) -> VoiceResult:
    """Recall (an occurrence is caught when one interval covers its whole span), false intervals, edges.

    Edge errors compare the interval minus the padding with the span: positive = later than the span.
    """
    pad = spotter.padding
    caught, starts, ends = 0, [], []
    for track in scored.positives:
        assert track.span_ms is not None
        span_start, span_end = track.span_ms
        intervals = intervals_at(spotter, track, threshold)
        covering = [item for item in intervals if item.start_ms <= span_start and item.end_ms >= span_end]
        caught += bool(covering)
        overlapping = [item for item in intervals if item.start_ms < span_end and item.end_ms > span_start]
        if overlapping:
            best = max(
                overlapping, key=lambda item: min(item.end_ms, span_end) - max(item.start_ms, span_start)
            )
            starts.append(best.start_ms + pad.before_ms - span_start)
            ends.append(best.end_ms - pad.after_ms - span_end)
    confusable_false = sum(bool(intervals_at(spotter, track, threshold)) for track in scored.confusables)
    speech_false = len(intervals_at(spotter, scored.speech, threshold))
    return VoiceResult(
        key=scored.key,
        occurrences=len(scored.positives),
        caught=caught,
        confusable_tracks=len(scored.confusables),
        confusable_false=confusable_false,
        speech_hours=scored.speech.duration_ms / 3.6e6,
        speech_false=speech_false,
        start_errors_ms=starts,
        end_errors_ms=ends,
    )


@dataclass
class Summary:
    threshold: float
    recall: float
    recall_ci: tuple[float, float]
    voices_all_caught: int
    voices: int
    false_per_hour: float
    false_per_hour_ci: tuple[float, float]
    speech_hours: float
    speech_false: int
    confusable_false_rate: float
    edge_abs_p50_ms: float
    edge_abs_p95_ms: float
    edges_within_50ms: float


def summarise(results: list[VoiceResult], threshold: float, seed: int = 0, rounds: int = 2000) -> Summary:
    """Pooled figures and bootstrap-over-voices 95% intervals."""
    rng = np.random.default_rng(seed)
    caught = np.array([result.caught for result in results], float)
    occurrences = np.array([result.occurrences for result in results], float)
    false = np.array([result.speech_false for result in results], float)
    hours = np.array([result.speech_hours for result in results], float)
    picks = rng.integers(0, len(results), size=(rounds, len(results)))
    recall_boot = caught[picks].sum(1) / occurrences[picks].sum(1)
    false_boot = false[picks].sum(1) / hours[picks].sum(1)
    edges = np.abs(np.array([e for result in results for e in result.start_errors_ms + result.end_errors_ms]))
    return Summary(
        threshold=threshold,
        recall=float(caught.sum() / occurrences.sum()),
        recall_ci=(float(np.percentile(recall_boot, 2.5)), float(np.percentile(recall_boot, 97.5))),
        voices_all_caught=int(sum(result.caught == result.occurrences for result in results)),
        voices=len(results),
        false_per_hour=float(false.sum() / hours.sum()),
        false_per_hour_ci=(float(np.percentile(false_boot, 2.5)), float(np.percentile(false_boot, 97.5))),
        speech_hours=float(hours.sum()),
        speech_false=int(false.sum()),
        confusable_false_rate=float(
            sum(r.confusable_false for r in results) / max(1, sum(r.confusable_tracks for r in results))
        ),
        edge_abs_p50_ms=float(np.median(edges)) if len(edges) else float("nan"),
        edge_abs_p95_ms=float(np.percentile(edges, 95)) if len(edges) else float("nan"),
        edges_within_50ms=float(np.mean(edges <= 50)) if len(edges) else float("nan"),
    )


def choose_threshold(
    spotter: KeywordSpotter,
    scored: list[ScoredTracks],
    max_false_per_hour: float = 1.0,
    max_confusable_rate: float = 0.05,
) -> float:
    """The validation threshold: highest recall among thresholds that keep false intervals in keyword-free
    speech within ``max_false_per_hour`` and intervals on confusable tracks within ``max_confusable_rate``;
    ties go to the middle of the tied range."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    best_recall, tied = -1.0, []
    for threshold in grid:
        results = [evaluate_voice(spotter, item, float(threshold)) for item in scored]
        summary = summarise(results, float(threshold), rounds=1)
        if summary.false_per_hour > max_false_per_hour or summary.confusable_false_rate > max_confusable_rate:
            continue
        if summary.recall > best_recall + 1e-9:
            best_recall, tied = summary.recall, [float(threshold)]
        elif abs(summary.recall - best_recall) <= 1e-9:
            tied.append(float(threshold))
    return tied[len(tied) // 2] if tied else float(grid[-1])
