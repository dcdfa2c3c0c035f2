"""Settings of the kws service (``EARSHOT_KWS_*``); thresholds and default padding live in the model."""

from pathlib import Path

from services.common.audio import AudioLimits
from services.common.settings import EarshotSettings
from services.kws.model import MODEL_PATH


class KwsSettings(EarshotSettings):
    kws_model_path: Path = MODEL_PATH
    # Padding overrides in ms; None means the defaults written in the model's metadata.
    kws_pad_before_ms: int | None = None
    kws_pad_after_ms: int | None = None
    # Playback tracks are longer than voice notes: a song, a podcast segment.
    kws_max_bytes: int = 64 * 1024 * 1024
    kws_max_duration_s: float = 900.0

    @property
    def audio_limits(self) -> AudioLimits:
        return AudioLimits(max_bytes=self.kws_max_bytes, max_duration_s=self.kws_max_duration_s)
