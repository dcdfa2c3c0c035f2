"""The shipped ONNX model at runtime: one onnxruntime session plus the metadata it was exported with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from services.classifier.calibration import Calibration
from services.classifier.features import feature_parameters
from services.classifier.sound_features import sound_feature_parameters

# Must agree with export.py (checked by tests/classifier/test_model.py).
INPUT_NAMES = ("log_mel", "sound_blocks")
OUTPUT_NAMES = ("cry_logit", "reason_logits")


@dataclass(frozen=True)
class ModelMetadata:
    """What the exported file says about itself: the one place labels, thresholds and version live."""

    version: str
    labels: list[str]
    cry_threshold: float
    not_sure_threshold: float
    calibration: Calibration
    features: dict
    sound_features: dict
    raw: dict[str, str]

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> ModelMetadata:
        labels = json.loads(properties["labels"])
        return cls(
            version=properties["version"],
            labels=labels,
            cry_threshold=float(properties["cry_threshold"]),
            not_sure_threshold=float(properties["not_sure_threshold"]),
            calibration=Calibration.from_json(properties["calibration"])
            if "calibration" in properties
            else Calibration.temperature_only(float(properties["temperature"]), len(labels)),
            features=json.loads(properties["features"]),
            sound_features=json.loads(properties["sound_features"]),
            raw=dict(properties),
        )


class CryModelSession:
    """Runs batches of log-mel windows; onnxruntime sessions are safe to call from several threads."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = ModelMetadata.from_properties(self._session.get_modelmeta().custom_metadata_map)
        expected = [feature_parameters(), sound_feature_parameters()]
        if [self.metadata.features, self.metadata.sound_features] != json.loads(json.dumps(expected)):
            raise ValueError(f"{path} was trained on other features: {self.metadata.raw}")

    def run(self, log_mels: np.ndarray, sound_blocks: np.ndarray) -> tuple[float, np.ndarray]:
        """One recording: its cry logit (from the gate blocks) and (windows, labels) reason logits."""
        cry_logit, reason_logits = self._session.run(
            list(OUTPUT_NAMES),
            {INPUT_NAMES[0]: log_mels.astype(np.float32), INPUT_NAMES[1]: sound_blocks.astype(np.float32)},
        )
        return float(cry_logit.reshape(-1)[0]), reason_logits
