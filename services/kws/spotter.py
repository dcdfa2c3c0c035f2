"""The library the kws worker calls: decode a playback track, score it, return ``skip_kws`` intervals.

``KeywordSpotter.load()`` opens the ONNX model once; ``scan`` keeps no state between calls (the
onnxruntime session's ``run`` is thread-safe), so one spotter serves many threads, and each process
of a pool can load its own.

``StreamingScorer`` is the same scoring chunk by chunk, for the streaming path (``streaming.py``): it
carries the pending samples and the feature frames still needed as context, and yields exactly the scores
the whole-track scan gives, plus tentative scores of the newest frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.common.audio import AudioLimits, decode_audio
from services.common.contracts import KwsResult
from services.common.contracts import SkipInterval as ResultInterval
from services.common.metrics import stage
from services.kws.detector import DetectorConfig, detect, start_at_onset
from services.kws.features import FEATURE_TIMING, N_MELS, StreamingLogMel, frame_levels_db, log_mel
from services.kws.intervals import Detection, Padding, SkipInterval, detections_to_intervals
from services.kws.model import SpotterModel

if TYPE_CHECKING:
    from services.kws.enrollment import VoiceHead


@dataclass(frozen=True)
class KwsScan:
    """The answer for one track."""

    duration_ms: int
    intervals: list[SkipInterval]
    model_version: str
    threshold: float

    @property
    def muted_ms(self) -> int:
        """How long the intervals mute the microphone (they never overlap: ``detections_to_intervals``)."""
        return sum(interval.end_ms - interval.start_ms for interval in self.intervals)

    def to_json_dict(self) -> dict[str, object]:
        return {
            "duration_ms": self.duration_ms,
            "intervals": [interval.to_json_dict() for interval in self.intervals],
            "model_version": self.model_version,
            "threshold": self.threshold,
        }

    def to_result(self, track_id: str, received_at: datetime, voice_id: str | None = None) -> KwsResult:
        """This scan as the store takes it: the kws worker and the gateway's streams publish it alike."""
        return KwsResult(
            track_id=track_id,
            voice_id=voice_id,
            status="done",
            duration_ms=self.duration_ms,
            intervals=[ResultInterval(**interval.to_json_dict()) for interval in self.intervals],
            model_version=self.model_version,
            threshold=self.threshold,
            received_at=received_at,
        )


@dataclass(frozen=True)
class TrackScores:
    """A whole track's frame scores, with the per-frame levels its word onsets are found by."""

    duration_ms: int
    scores: np.ndarray
    levels_db: np.ndarray


class KeywordSpotter:
    """Playback-side detector: the model at its playback threshold, plus padding.

    With an enrolled voice's ``head`` the network's embeddings go through that head instead of the
    shipped one, at the voice's own threshold.
    """

    def __init__(
        self,
        model: SpotterModel,
        padding: Padding | None = None,
        limits: AudioLimits | None = None,
        threshold: float | None = None,
        head: VoiceHead | None = None,
    ) -> None:
        if head is not None and head.base_model_version != model.metadata.version:
            raise ValueError(
                f"the voice head was fitted on model {head.base_model_version}, not {model.metadata.version}"
            )
        self.model = model
        self.metadata = model.metadata
        self.padding = padding or model.metadata.padding
        self.limits = limits or AudioLimits()
        self.head = head
        default = model.metadata.playback_threshold if head is None else head.threshold
        self.threshold = default if threshold is None else threshold

    def with_voice(self, head: VoiceHead) -> KeywordSpotter:
        """The same spotter (padding, limits) scoring through an enrolled voice's head."""
        return KeywordSpotter(self.model, self.padding, self.limits, head=head)

    @property
    def model_version(self) -> str:
        """The shipped model's version, plus the voice head's fingerprint when there is one."""
        if self.head is None:
            return self.metadata.version
        return f"{self.metadata.version}+voice.{self.head.version}"

    @classmethod
    def load(cls, model_path: Path | None = None) -> KeywordSpotter:
        """The spotter as configured by ``EARSHOT_KWS_*`` settings (model path, padding, limits)."""
        from services.kws.settings import KwsSettings

        settings = KwsSettings()
        model = SpotterModel(model_path or settings.kws_model_path)
        defaults = model.metadata.padding
        padding = Padding(
            before_ms=defaults.before_ms
            if settings.kws_pad_before_ms is None
            else settings.kws_pad_before_ms,
            after_ms=defaults.after_ms if settings.kws_pad_after_ms is None else settings.kws_pad_after_ms,
        )
        return cls(model, padding=padding, limits=settings.audio_limits)

    def scan(self, audio: bytes) -> KwsScan:
        """Intervals for a track in any decodable format; raises ``AudioRejected`` for bad input."""
        with stage("decode"):
            decoded = decode_audio(audio, self.metadata.sample_rate, self.limits)
        return self.scan_samples(decoded.samples)

    def scan_samples(self, samples: np.ndarray, threshold: float | None = None) -> KwsScan:
        """Intervals for mono float32 samples at the model's sample rate."""
        return self.scan_track(self.track_scores(samples), threshold)

    def track_scores(self, samples: np.ndarray) -> TrackScores:
        """One pass of the network over a whole track, which a scan at any threshold post-processes."""
        duration_ms = int(len(samples) * 1000 // self.metadata.sample_rate)
        with stage("features"):
            features = log_mel(samples)
        with stage("inference"):
            scores = self.feature_scores(features)
        return TrackScores(duration_ms, scores, frame_levels_db(features))

    def scan_track(self, track: TrackScores, threshold: float | None = None) -> KwsScan:
        """Intervals from a track's scores at ``threshold`` (default: this spotter's)."""
        return self.scan_scores(track.scores, track.duration_ms, threshold, track.levels_db)

    def detector(self, threshold: float | None = None) -> DetectorConfig:
        """The detector at ``threshold`` (default: this spotter's), holding at the voice head's or the model's
        hold ratio of it."""
        threshold = self.threshold if threshold is None else threshold
        hold_ratio = self.metadata.hold_ratio if self.head is None else self.head.hold_ratio
        return self.metadata.detector(threshold, threshold * hold_ratio)

    def scan_scores(
        self,
        scores: np.ndarray,
        duration_ms: int,
        threshold: float | None = None,
        levels_db: np.ndarray | None = None,
    ) -> KwsScan:
        """Intervals from a whole track's frame scores: the post-processing batch and stream scans share.

        With the track's ``levels_db`` (per feature frame) each detection starts at its word's onset."""
        config = self.detector(threshold)
        detections = detect(scores, config, self.metadata.timing)
        if levels_db is not None:
            detections = [self.start_at_onset(detection, levels_db) for detection in detections]
        intervals = detections_to_intervals(detections, self.padding, duration_ms, self.metadata.merge_gap_ms)
        return KwsScan(duration_ms, intervals, self.model_version, config.threshold)

    def start_at_onset(self, detection: Detection, levels_db: np.ndarray) -> Detection:
        """``detection`` moved back to where its word began, as the model's metadata says to look for it."""
        return start_at_onset(detection, levels_db, FEATURE_TIMING, self.metadata.onset_search)

    def frame_scores(self, samples: np.ndarray) -> np.ndarray:
        """Per-frame keyword probabilities of a whole track (for evaluation and calibration)."""
        return self.feature_scores(log_mel(samples))

    def feature_scores(self, features: np.ndarray) -> np.ndarray:
        """Per-frame keyword probabilities from log-mel features: the shipped head, or the voice's."""
        if self.head is None:
            return self.model.frame_scores(features)
        return self.head.frame_scores(self.model.frame_embeddings(features))


@dataclass
class StreamingScorer:
    """Chunk-by-chunk frame scores with explicit state; the same scores as ``KeywordSpotter.feature_scores``
    over the whole track, through the shipped head or an enrolled voice's ``head``.

    A score frame needs ``context_frames`` feature frames on each side, and a voice's head also reads the
    embeddings of ``head_frames`` score frames on each side; so a frame's score is emitted once that much
    right context has arrived (or at ``finish``), computed over a slice that starts that much before it.
    """

    model: SpotterModel
    head: VoiceHead | None = None
    features: StreamingLogMel = field(default_factory=StreamingLogMel)
    buffer: np.ndarray = field(default_factory=lambda: np.zeros((0, N_MELS), np.float32))
    buffer_start: int = 0  # index of buffer[0] among all feature frames so far
    emitted: int = 0  # score frames already returned
    # Scores of the frames after ``emitted``, computed with the right context that has arrived so far (the
    # missing part padded like the end of a track): what the detector may act on before the exact score.
    tentative: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # Level of every feature frame so far (4 bytes per 10 ms): where detections' words begin.
    levels_db: list[np.ndarray] = field(default_factory=list)

    @property
    def feature_frames(self) -> int:
        """Feature frames seen so far."""
        return self.buffer_start + len(self.buffer)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Scores that ``chunk`` completes (possibly none); ``tentative`` is updated too."""
        features = self.features.push(chunk)
        if len(features) == 0:
            return np.zeros(0, np.float32)
        self.levels_db.append(frame_levels_db(features))
        self.buffer = np.concatenate([self.buffer, features])
        total = self.buffer_start + len(self.buffer)
        stride = self.stride
        exact_until = (total - 1 - self.model.metadata.context_frames) // stride + 1 - self.head_frames
        return self._emit(max(self.emitted, exact_until))

    def finish(self) -> np.ndarray:
        """The remaining scores at the end of the stream (right edge padded like the offline scan)."""
        total = self.buffer_start + len(self.buffer)
        return self._emit(-(-total // self.stride))

    def track_levels_db(self) -> np.ndarray:
        """The level of every feature frame so far (joined once: a long stream's chunks are not rejoined)."""
        if len(self.levels_db) != 1:
            self.levels_db = [np.concatenate(self.levels_db) if self.levels_db else np.zeros(0, np.float32)]
        return self.levels_db[0]

    @property
    def stride(self) -> int:
        return int(round(self.model.metadata.score_hop_ms / self.model.metadata.feature_hop_ms))

    @property
    def head_frames(self) -> int:
        """Score frames on each side whose embeddings a voice's head reads (0 for the shipped head)."""
        return 0 if self.head is None else max(abs(offset) for offset in self.head.offsets)

    def _scores(self, features: np.ndarray) -> np.ndarray:
        if self.head is None:
            return self.model.frame_scores(features)
        return self.head.frame_scores(self.model.frame_embeddings(features))

    def _first_needed(self) -> int:
        """The first feature frame the next exact score needs (a multiple of the stride)."""
        start = max(0, (self.emitted - self.head_frames) * self.stride - self.model.metadata.context_frames)
        return start - start % self.stride

    def _emit(self, until: int) -> np.ndarray:
        if len(self.buffer) == 0:
            return np.zeros(0, np.float32)
        start = self._first_needed()
        scores = self._scores(self.buffer[start - self.buffer_start :])
        first = self.emitted - start // self.stride
        until = max(until, self.emitted)
        new = scores[first : first + until - self.emitted]
        self.tentative = scores[first + until - self.emitted :]
        self.emitted = until
        keep_from = self._first_needed()
        self.buffer = self.buffer[keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        return new
