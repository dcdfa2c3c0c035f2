"""The shipped spotter: one ONNX file and the facts in its metadata (onnxruntime, no torch).

Every number the detector needs (keyword, sample rate, frame timing, thresholds, padding, onsets) is read
from the model's metadata, so the file that produced a score also says how to read it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime

from services.kws.detector import NO_HOLD, DetectorConfig, FrameTiming, OnsetSearch
from services.kws.intervals import Padding

MODEL_PATH = Path(__file__).resolve().parent / "models" / "marusya.onnx"


@dataclass(frozen=True)
class ModelMetadata:
    """What the ONNX metadata says (string values, parsed)."""

    keyword: str
    version: str
    sample_rate: int
    feature_hop_ms: float
    score_hop_ms: float
    score_offset_ms: float
    context_frames: int
    playback_threshold: float
    mic_threshold: float
    smoothing_frames: int
    min_frames: int
    pad_before_ms: int
    pad_after_ms: int
    merge_gap_ms: int
    # A detection lasts while the smoothed score stays at or above hold_ratio × its threshold (hysteresis);
    # train chooses it on the validation voices. Models written before it had none: NO_HOLD.
    hold_ratio: float = NO_HOLD
    # How far back a detection's start may move to the pause before its word (``detector.OnsetSearch``).
    # Models written before it had none: 0, starts stay where the scores put them.
    onset_reach_ms: float = 0.0
    onset_quiet_db: float = OnsetSearch.quiet_db
    onset_pause_ms: float = OnsetSearch.pause_ms

    @classmethod
    def from_onnx(cls, properties: dict[str, str]) -> ModelMetadata:
        values = json.loads(properties["earshot_kws"])
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})

    @property
    def timing(self) -> FrameTiming:
        return FrameTiming(hop_ms=self.score_hop_ms, offset_ms=self.score_offset_ms)

    @property
    def padding(self) -> Padding:
        return Padding(before_ms=self.pad_before_ms, after_ms=self.pad_after_ms)

    @property
    def onset_search(self) -> OnsetSearch:
        return OnsetSearch(self.onset_reach_ms, self.onset_quiet_db, self.onset_pause_ms)

    def detector(self, threshold: float, hold: float | None = None) -> DetectorConfig:
        return DetectorConfig(
            threshold=threshold, smoothing_frames=self.smoothing_frames, min_frames=self.min_frames, hold=hold
        )


class SpotterModel:
    """An onnxruntime session (thread-safe ``run``) and its metadata."""

    def __init__(self, path: Path = MODEL_PATH, threads: int = 1) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = ModelMetadata.from_onnx(self.session.get_modelmeta().custom_metadata_map)

    def with_metadata(self, **changes: object) -> SpotterModel:
        """The same session read with other metadata: what train tries (hold ratios) before writing it."""
        other = copy.copy(self)
        other.metadata = replace(self.metadata, **changes)
        return other

    def frame_scores(self, features: np.ndarray) -> np.ndarray:
        """Keyword probability per score frame for log-mel ``features`` (frames, mels) of one track."""
        if len(features) == 0:
            return np.zeros(0, np.float32)
        (scores,) = self.session.run(["scores"], {"features": features[None].astype(np.float32, copy=False)})
        return scores[0]

    def frame_embeddings(self, features: np.ndarray) -> np.ndarray:
        """The network's penultimate activations per score frame, shape (score frames, channels): what
        the shipped head turns into ``frame_scores`` and what an enrolled voice's head reads instead."""
        if len(features) == 0:
            return np.zeros((0, self.session.get_outputs()[1].shape[1]), np.float32)
        (embeddings,) = self.session.run(
            ["embeddings"], {"features": features[None].astype(np.float32, copy=False)}
        )
        return embeddings[0].T
