"""What the worker and the CLI call: audio bytes in, an answer a parent can act on out.

Never raises for bad audio: bad input is an answer with status "bad_audio".

Steps: decode (services.common.audio, band-limited to 8 kHz) -> signal gate (gate.py) -> log-mel windows
and sound-embedding blocks -> one ONNX run (cry gate + reasons) -> "is it mostly a cry?" -> calibrated
reason probabilities -> "ok" or "not sure".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from services.classifier.calibration import sigmoid
from services.classifier.features import PHONE_SAMPLE_RATE, log_mel, split_windows, to_model_rate
from services.classifier.gate import measure_signal
from services.classifier.inference import CryModelSession
from services.classifier.settings import ClassifierSettings
from services.classifier.sound_features import sound_blocks
from services.common.audio import AudioLimits, AudioRejected, decode_audio
from services.common.metrics import stage

# How a reason is named to parents (the bot localises; belly_pain is shown as «боль в животике / колики»).
LABEL_NAMES = {
    "hungry": "hunger",
    "tired": "tiredness",
    "discomfort": "discomfort (wet nappy, too cold or too hot)",
    "belly_pain": "belly pain or colic",
    "burping": "needing to burp",
    "scared": "fear",
}
RETRY = "Please record again: 5 or more seconds of the crying, phone 20-50 cm from the baby, in a quiet room."
GATE_MESSAGES = {
    "too_short": "The recording is too short to judge. " + RETRY,
    "too_quiet": "The recording is almost silent. " + RETRY,
    "clipped": "The recording is distorted because the phone was too close or too loud. " + RETRY,
    "not_a_cry": "This does not sound mostly like a baby crying (we hear speech, noise, music or something "
    "else). " + RETRY,
}


@dataclass
class CryAnalysis:
    """The answer for one recording; to_json_dict() is what the CLI prints and the worker publishes."""

    status: str  # "ok" | "not_sure" | "not_a_cry" | "bad_audio"
    label: str | None
    probabilities: dict[str, float]
    quality: dict[str, Any]
    model_version: str
    message: str
    windows: int = field(default=0, repr=False)

    def to_json_dict(self) -> dict[str, Any]:
        answer = asdict(self)
        answer.pop("windows")
        return answer


class CryClassifier:
    """Holds the ONNX session; analyse() is thread-safe."""

    def __init__(self, session: CryModelSession, limits: AudioLimits) -> None:
        self._session = session
        self._limits = limits
        self.metadata = session.metadata

    @classmethod
    def load(cls, settings: ClassifierSettings | None = None) -> CryClassifier:
        settings = settings or ClassifierSettings()
        return cls(
            CryModelSession(settings.model_path, settings.inference_threads),
            AudioLimits(max_bytes=settings.max_audio_bytes, max_duration_s=settings.max_audio_seconds),
        )

    def analyse(self, audio: bytes) -> CryAnalysis:
        try:
            with stage("decode"):
                decoded = decode_audio(audio, PHONE_SAMPLE_RATE, self._limits)
        except AudioRejected as rejection:
            return self._answer(
                "bad_audio", {"reason": rejection.code, "detail": rejection.detail}, rejection.message
            )
        return self.analyse_samples(decoded.samples)

    def analyse_samples(self, phone_samples: np.ndarray) -> CryAnalysis:
        """The same for already decoded mono samples at PHONE_SAMPLE_RATE (the evaluation uses this)."""
        signal = measure_signal(phone_samples, PHONE_SAMPLE_RATE)
        quality = signal.as_dict()
        if signal.reason is not None:
            return self._answer("bad_audio", quality, GATE_MESSAGES[signal.reason])
        with stage("features"):
            windows = split_windows(to_model_rate(phone_samples))
            features = np.stack([log_mel(w) for w in windows])
            blocks = sound_blocks(phone_samples)
        with stage("inference"):
            cry_logit, reason_logits = self._session.run(features, blocks)
        quality["cry_probability"] = round(float(sigmoid(np.float64(cry_logit))), 4)
        probabilities = self._reason_probabilities(reason_logits)
        if quality["cry_probability"] < self.metadata.cry_threshold:
            quality["reason"] = "not_a_cry"
            return self._answer("not_a_cry", quality, GATE_MESSAGES["not_a_cry"], probabilities=probabilities)
        label = max(probabilities, key=probabilities.__getitem__)
        if probabilities[label] < self.metadata.not_sure_threshold:
            message = (
                "We cannot tell the reason with confidence from this recording. The most common reasons "
                "are hunger, tiredness and discomfort; try them, or record again for 5 or more seconds."
            )
            return self._answer("not_sure", quality, message, label, probabilities)
        message = (
            f"The cry sounds most like {LABEL_NAMES.get(label, label)} ({probabilities[label]:.0%} likely). "
            "This is a hint, not a diagnosis: if the baby seems unwell, call a doctor."
        )
        return self._answer("ok", quality, message, label, probabilities)

    def _reason_probabilities(self, reason_logits: np.ndarray) -> dict[str, float]:
        """The shipped calibration of the windows' probabilities: the very function the evaluation scores."""
        owner = np.zeros(len(reason_logits), dtype=int)
        calibrated = self.metadata.calibration.probabilities(reason_logits.astype(np.float64), owner, 1)[0]
        return {label: round(float(p), 4) for label, p in zip(self.metadata.labels, calibrated, strict=True)}

    def _answer(
        self,
        status: str,
        quality: dict[str, Any],
        message: str,
        label: str | None = None,
        probabilities: dict[str, float] | None = None,
    ) -> CryAnalysis:
        return CryAnalysis(status, label, probabilities or {}, quality, self.metadata.version, message)
