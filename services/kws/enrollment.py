"""Voice enrollment: a per-voice head on the shipped spotter's embeddings (numpy + scipy, no torch, no I/O).

The shipped network ends in a 1×1 convolution over 48 channels per ensemble member;
``SpotterModel.frame_embeddings`` exposes its input. Enrollment freezes the network and fits a new
logistic head on those embeddings (each score frame reads its own and a few neighbouring frames'
embeddings) from the client's clips: keyword clips give positive frames inside the span, keyword-free
clips and the rest of the keyword clips give negatives, and the base model's general data
(``GeneralBank``: the training voices' keywords, confusables and sayings) is mixed in so that the head
stays a keyword spotter and not a detector of this voice. The head's detections hold on down to
``HOLD_RATIO`` of its threshold (hysteresis, ``services.kws.detector``), so a slow keyword whose score
dips in the middle is still one interval over the whole word and the threshold can sit high. The per-voice
threshold comes from held-out scores of the client's own clips (cross-fitting, ``FOLDS`` folds) by the kws
calibration rule (``services.kws.thresholds``: misses weigh 5, false alarms 1) among the thresholds at
which the keyword-free clips stay within the false-alarm budget, and the same held-out scores give the
validation figures, base model against adapted model. Every random choice comes from ``seed``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.kws.detector import NO_HOLD, smooth
from services.kws.evaluation import ScoredTrack, ScoredTracks, evaluate_voice, intervals_at
from services.kws.features import SAMPLE_RATE, frame_levels_db, log_mel
from services.kws.labels import frame_labels
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.thresholds import (
    FALSE_BUDGET_PER_HOUR,
    FALSE_WEIGHT,
    MISS_WEIGHT,
    THRESHOLDS,
    budget_floor,
    calibration_loss,
    lowest_loss_threshold,
)

HEAD_FORMAT = "KwsVoiceHead.v2"
# v1 heads, stored before the hold level, hold at their threshold as they were calibrated; such a head is
# written back as v1, byte for byte, so its fingerprint and the scans cached under it stay valid.
V1_FORMAT = "KwsVoiceHead.v1"
BANK_PATH = MODEL_PATH.with_name("marusya_bank.npz")  # made by ``python -m services.kws build-bank``
CONTEXT_OFFSETS = (-6, -3, 0, 3, 6)  # score frames (20 ms) whose embeddings one frame's head reads
GENERAL_WEIGHT = 0.5  # total weight of the bank's frames relative to the client's frames
L2 = 1e-2
FOLDS = 4  # cross-fitting folds: every client clip is scored once by a head that did not see it
ALIGN_MIN_PEAK = 0.05  # below this the base model has not really heard the keyword: ask for a span
HOLD_RATIO = 0.5  # a detection lasts while the score stays above half the threshold, as alignment's half peak


@dataclass(frozen=True)
class EnrollmentClip:
    """One clip of the client's voice: mono float32 at 16 kHz, and the keyword's span (ms) if it has one."""

    samples: np.ndarray
    span_ms: tuple[float, float] | None = None

    @property
    def duration_ms(self) -> int:
        return int(len(self.samples) * 1000 // SAMPLE_RATE)


@dataclass(frozen=True)
class GeneralBank:
    """Context-stacked embeddings of the base model's general data, with frame labels and weights."""

    features: np.ndarray  # (frames, channels * len(CONTEXT_OFFSETS)), float32
    labels: np.ndarray
    weights: np.ndarray


def load_bank(path: Path = BANK_PATH) -> GeneralBank:
    with np.load(path) as stored:
        return GeneralBank(
            stored["features"].astype(np.float32), stored["labels"], stored["weights"].astype(np.float32)
        )


@dataclass(frozen=True)
class VoiceHead:
    """The per-voice artefact: standardisation, logistic weights, the voice's threshold and its hold level
    as a share of the threshold (1: no hysteresis)."""

    base_model_version: str
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    seed: int
    offsets: tuple[int, ...] = CONTEXT_OFFSETS
    hold_ratio: float = HOLD_RATIO

    @property
    def version(self) -> str:
        """A fingerprint of everything that decides the head's intervals."""
        return hashlib.sha256(json.dumps(self.to_json_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def frame_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Keyword probability per score frame from ``SpotterModel.frame_embeddings`` of one track."""
        if len(embeddings) == 0:
            return np.zeros(0, np.float32)
        return self.stacked_scores(stack_context(embeddings, self.offsets))

    def stacked_scores(self, stacked: np.ndarray) -> np.ndarray:
        """The same from already context-stacked embeddings."""
        standardised = (stacked - self.mean) / self.scale
        return (1.0 / (1.0 + np.exp(-(standardised @ self.weights + self.bias)))).astype(np.float32)

    def to_json_dict(self) -> dict[str, object]:
        """``KwsVoiceHead.v2``: the v1 fields and the hold ratio; a head holding at its threshold is v1."""
        if self.hold_ratio == NO_HOLD:
            return self._v1_json_dict()
        return self._v1_json_dict() | {"format": HEAD_FORMAT, "hold_ratio": float(self.hold_ratio)}

    def _v1_json_dict(self) -> dict[str, object]:
        return {
            "format": V1_FORMAT,
            "base_model_version": self.base_model_version,
            "offsets": list(self.offsets),
            "mean": [float(value) for value in self.mean],
            "scale": [float(value) for value in self.scale],
            "weights": [float(value) for value in self.weights],
            "bias": float(self.bias),
            "threshold": float(self.threshold),
            "seed": self.seed,
        }

    @classmethod
    def from_json_dict(cls, values: dict[str, object]) -> VoiceHead:
        if values.get("format") not in (V1_FORMAT, HEAD_FORMAT):
            raise ValueError(f"not a {HEAD_FORMAT} artefact: format {values.get('format')!r}")
        return cls(
            base_model_version=str(values["base_model_version"]),
            mean=np.array(values["mean"], np.float32),
            scale=np.array(values["scale"], np.float32),
            weights=np.array(values["weights"], np.float32),
            bias=float(values["bias"]),
            threshold=float(values["threshold"]),
            seed=int(values["seed"]),
            offsets=tuple(int(offset) for offset in values["offsets"]),
            hold_ratio=float(values.get("hold_ratio", NO_HOLD)),
        )


@dataclass(frozen=True)
class DetectionFigures:
    """Recall on keyword clips and false intervals on keyword-free clips, at one threshold."""

    caught: int
    occurrences: int
    false_intervals: int
    speech_hours: float
    threshold: float

    @property
    def recall(self) -> float:
        return self.caught / self.occurrences if self.occurrences else float("nan")

    @property
    def false_per_hour(self) -> float:
        return self.false_intervals / self.speech_hours if self.speech_hours else float("nan")

    def to_json_dict(self) -> dict[str, float | int | None]:
        """JSON-safe: a rate with nothing to measure it on is null, not NaN."""
        return {
            "recall": round(self.recall, 4) if self.occurrences else None,
            "caught": self.caught,
            "occurrences": self.occurrences,
            "false_intervals": self.false_intervals,
            "false_per_hour": round(self.false_per_hour, 2) if self.speech_hours else None,
            "speech_hours": round(self.speech_hours, 4),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class Enrollment:
    """What enrolling a voice produced: the head, and base against adapted on held-out scores of the clips."""

    head: VoiceHead
    base: DetectionFigures
    adapted: DetectionFigures
    clips: int

    def validation_json(self) -> dict[str, object]:
        """What ``GET /v1/voices/{id}`` reports: base against adapted, and how the threshold was chosen."""
        return {
            "base": self.base.to_json_dict(),
            "adapted": self.adapted.to_json_dict(),
            "hold": round(self.head.threshold * self.head.hold_ratio, 4),
            "false_budget_per_hour": FALSE_BUDGET_PER_HOUR,
            "clips": self.clips,
            "method": f"{FOLDS}-fold cross-fitting over the enrollment clips",
        }


def stack_context(embeddings: np.ndarray, offsets: tuple[int, ...] = CONTEXT_OFFSETS) -> np.ndarray:
    """(frames, channels) → (frames, channels * len(offsets)): each frame with its neighbours' embeddings
    (edge frames repeated beyond the track)."""
    index = np.clip(np.arange(len(embeddings))[:, None] + np.array(offsets)[None], 0, len(embeddings) - 1)
    return embeddings[index].reshape(len(embeddings), -1).astype(np.float32, copy=False)


@dataclass(frozen=True)
class ClipFrames:
    """One clip as the head sees it: context-stacked embeddings, frame labels and frame weights; and its
    level per feature frame, with which the scan moves a detection's start to its word's onset."""

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    levels_db: np.ndarray


def clip_frames(model: SpotterModel, clip: EnrollmentClip) -> ClipFrames:
    mel = log_mel(clip.samples)
    embeddings = model.frame_embeddings(mel)
    spans = [clip.span_ms] if clip.span_ms else []
    labels, weights = frame_labels(len(embeddings), spans, model.metadata.timing)
    return ClipFrames(stack_context(embeddings), labels, weights, frame_levels_db(mel))


def clip_tracks(
    scores: list[np.ndarray], clips: list[EnrollmentClip], frames: list[ClipFrames]
) -> list[ScoredTrack]:
    """The evaluation module's view of each scored clip."""
    return [
        ScoredTrack(clip_scores, clip.duration_ms, frame.levels_db, clip.span_ms)
        for clip_scores, clip, frame in zip(scores, clips, frames, strict=True)
    ]


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray, l2: float = L2
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression (L-BFGS, from zeros: deterministic); positives and negatives get equal
    total weight, so a voice with few keyword frames still pulls the boundary."""
    positive = labels > 0.5
    balance = np.where(
        positive, 0.5 / max(weights[positive].sum(), 1e-9), 0.5 / max(weights[~positive].sum(), 1e-9)
    )
    sample_weight = (weights * balance).astype(np.float64)
    x = features.astype(np.float64)

    def loss(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = parameters[:-1], parameters[-1]
        logits = x @ w + b
        value = np.sum(sample_weight * (np.logaddexp(0.0, logits) - labels * logits)) + 0.5 * l2 * w @ w
        residual = sample_weight * (1.0 / (1.0 + np.exp(-logits)) - labels)
        gradient = np.concatenate([x.T @ residual + l2 * w, [residual.sum()]])
        return float(value), gradient

    import scipy.optimize  # here, not at the top: the gateway imports this module's neighbours, not fits

    result = scipy.optimize.minimize(
        loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 200}
    )
    return result.x[:-1].astype(np.float32), float(result.x[-1])


def fold_of(count: int, rng: np.random.Generator, folds: int = FOLDS) -> np.ndarray:
    """A seeded assignment of ``count`` clips to ``folds`` folds of (nearly) equal size."""
    return rng.permutation(count) % folds


def fit_head(frames: list[ClipFrames], bank: GeneralBank, base_model_version: str, seed: int) -> VoiceHead:
    """A head fitted on the clips' frames and the bank (worth ``GENERAL_WEIGHT`` of the clips' weight);
    its threshold is 0.5 until ``enroll`` sets it from held-out scores."""
    features = np.concatenate([clip.features for clip in frames] + [bank.features])
    labels = np.concatenate([clip.labels for clip in frames] + [bank.labels])
    client_weight = sum(float(clip.weights.sum()) for clip in frames)
    general = bank.weights * (GENERAL_WEIGHT * client_weight / max(float(bank.weights.sum()), 1e-9))
    weights = np.concatenate([clip.weights for clip in frames] + [general])
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-3
    coefficients, bias = fit_logistic((features - mean) / scale, labels, weights)
    return VoiceHead(base_model_version, mean, scale, coefficients, bias, threshold=0.5, seed=seed)


def scored_tracks(keyword: list[ScoredTrack], free: list[ScoredTrack]) -> ScoredTracks:
    """Scored clips as one voice's tracks; keyword-free clips are joined into one track (counted for false
    intervals only, so it goes without levels: its clips' score frames do not join up exactly)."""
    free_ms = sum(track.duration_ms for track in free)
    free_scores = [track.scores for track in free]
    return ScoredTracks(
        key="enrollment",
        positives=keyword,
        confusables=[],
        speech=ScoredTrack(np.concatenate(free_scores) if free_scores else np.zeros(0, np.float32), free_ms),
        scan_seconds=0.0,
        audio_seconds=free_ms / 1000,
    )


def figures(spotter, scored: ScoredTracks, threshold: float) -> DetectionFigures:
    result = evaluate_voice(spotter, scored, threshold)
    return DetectionFigures(
        result.caught, result.occurrences, result.speech_false, result.speech_hours, threshold
    )


def calibrated_threshold(spotter, held_out: ScoredTracks, free_tracks: list[ScoredTrack]) -> float:
    """The kws calibration rule on held-out clips whose truth is known, ``spotter`` being the adapted one
    (its hold level): per threshold, misses (a keyword clip whose span no interval covers) weigh
    ``MISS_WEIGHT``, false alarms (a keyword-free clip with an interval) ``FALSE_WEIGHT``; the least loss
    wins, ties go to the highest threshold. Only thresholds above every one at which the keyword-free
    clips hold more than ``FALSE_BUDGET_PER_HOUR`` (beyond the false alarms no threshold below the top
    removes, ``budget_floor``) take part: the loss counts clips, and with a few minutes of keyword-free
    speech one missed keyword clip outweighs a dozen false alarms, a rate the budget does not allow."""
    fires, false_intervals = [], []
    for threshold in THRESHOLDS:
        free_intervals = [intervals_at(spotter, track, float(threshold)) for track in free_tracks]
        covered = [
            any(
                interval.start_ms <= track.span_ms[0] and interval.end_ms >= track.span_ms[1]
                for interval in intervals_at(spotter, track, float(threshold))
            )
            for track in held_out.positives
        ]
        fires.append(covered + [bool(intervals) for intervals in free_intervals])
        false_intervals.append(sum(len(intervals) for intervals in free_intervals))
    truth = np.array([[True] * len(held_out.positives) + [False] * len(free_tracks)])
    hours = sum(track.duration_ms for track in free_tracks) / 3.6e6
    floor = budget_floor(np.array(false_intervals), hours, FALSE_BUDGET_PER_HOUR)
    fires = np.array(fires)
    loss = calibration_loss(truth & ~fires, fires & ~truth, MISS_WEIGHT, FALSE_WEIGHT)
    return lowest_loss_threshold(loss, floor)


def enroll(
    spotter,
    keyword_clips: list[EnrollmentClip],
    free_clips: list[EnrollmentClip],
    bank: GeneralBank,
    seed: int,
) -> Enrollment:
    """Fit a head for one voice; ``spotter`` is the base ``KeywordSpotter`` (its model, padding, threshold).

    Cross-fitting: the clips are split into ``FOLDS`` seeded folds, a head is fitted without each fold and
    scores it, so every clip gets a score from a head that never saw it. The shipped head is fitted on all
    clips, and its threshold is chosen on those held-out scores by the kws calibration rule under the
    false-alarm budget, with the shipped head's hold level.
    Keyword clips must carry spans (``align_keyword`` finds one for a clip given by text only).
    """
    rng = np.random.default_rng(seed)
    version = spotter.metadata.version
    keyword_frames = [clip_frames(spotter.model, clip) for clip in keyword_clips]
    free_frames = [clip_frames(spotter.model, clip) for clip in free_clips]
    keyword_fold, free_fold = fold_of(len(keyword_clips), rng), fold_of(len(free_clips), rng)
    keyword_scores: list[np.ndarray] = [np.zeros(0, np.float32)] * len(keyword_clips)
    free_scores: list[np.ndarray] = [np.zeros(0, np.float32)] * len(free_clips)
    for fold in range(FOLDS):
        training = [frames for frames, f in zip(keyword_frames, keyword_fold, strict=True) if f != fold]
        training += [frames for frames, f in zip(free_frames, free_fold, strict=True) if f != fold]
        head = fit_head(training, bank, version, seed)
        for index in np.flatnonzero(keyword_fold == fold):
            keyword_scores[index] = head.stacked_scores(keyword_frames[index].features)
        for index in np.flatnonzero(free_fold == fold):
            free_scores[index] = head.stacked_scores(free_frames[index].features)
    held_out_free = clip_tracks(free_scores, free_clips, free_frames)
    held_out = scored_tracks(clip_tracks(keyword_scores, keyword_clips, keyword_frames), held_out_free)
    fitted = fit_head(keyword_frames + free_frames, bank, version, seed)
    threshold = calibrated_threshold(spotter.with_voice(fitted), held_out, held_out_free)
    head = dataclasses.replace(fitted, threshold=threshold)
    base_scored = scored_tracks(
        clip_tracks(
            [spotter.frame_scores(clip.samples) for clip in keyword_clips], keyword_clips, keyword_frames
        ),
        clip_tracks([spotter.frame_scores(clip.samples) for clip in free_clips], free_clips, free_frames),
    )
    return Enrollment(
        head=head,
        base=figures(spotter, base_scored, spotter.threshold),
        adapted=figures(spotter.with_voice(head), held_out, threshold),
        clips=len(keyword_clips) + len(free_clips),
    )


@dataclass
class BankBuilder:
    """Collects frames of general data into a ``GeneralBank``: a stride of the keyword frames and a seeded
    sample of the others, so the committed bank stays small."""

    model: SpotterModel
    negatives_per_clip: int = 20
    keyword_stride: int = 2  # neighbouring keyword frames are nearly alike: every other one is enough
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, clip: EnrollmentClip) -> None:
        frames = clip_frames(self.model, clip)
        features, labels, weights = frames.features, frames.labels, frames.weights
        negatives = np.flatnonzero((labels < 0.5) & (weights > 0))
        keep = np.concatenate(
            [
                np.flatnonzero(labels > 0.5)[:: self.keyword_stride],
                self.rng.choice(negatives, size=min(len(negatives), self.negatives_per_clip), replace=False),
            ]
        )
        keep.sort()
        self.parts.append((features[keep], labels[keep], weights[keep]))

    def build(self) -> GeneralBank:
        return GeneralBank(*(np.concatenate([part[i] for part in self.parts]) for i in range(3)))


def align_keyword(
    spotter, samples: np.ndarray, min_peak: float = ALIGN_MIN_PEAK
) -> tuple[float, float] | None:
    """The keyword's span (ms) in a clip known to contain it, by the base model's own scores: the run of
    smoothed frames around the peak that stay above half the peak. None when the peak is too low to trust."""
    metadata = spotter.metadata
    scores = smooth(spotter.frame_scores(samples), metadata.smoothing_frames)
    if len(scores) == 0 or float(scores.max()) < min_peak:
        return None
    peak = int(np.argmax(scores))
    above = scores >= scores[peak] / 2
    first, last = peak, peak
    while first > 0 and above[first - 1]:
        first -= 1
    while last < len(scores) - 1 and above[last + 1]:
        last += 1
    timing = metadata.timing
    return (
        float(timing.centre_ms(first) - timing.hop_ms / 2),
        float(timing.centre_ms(last) + timing.hop_ms / 2),
    )
