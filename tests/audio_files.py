"""Audio files made in memory for tests: every container a user may send, encoded with PyAV."""

from __future__ import annotations

import numpy as np

from services.common.audio import encode_audio

# container format name -> (PyAV format, codec)
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("wav", "pcm_s16le"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "libopus"),
    "mp3": ("mp3", "libmp3lame"),
    "m4a": ("ipod", "aac"),
}


def tone(
    seconds: float, sample_rate: int = 16000, frequency: float = 440.0, level: float = 0.3
) -> np.ndarray:
    """A sine tone as mono float32."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def encode(samples: np.ndarray, sample_rate: int, container: str) -> bytes:
    """Encode mono float32 ``samples`` into ``container`` (a key of ``FORMATS``) and return the bytes."""
    av_format, codec = FORMATS[container]
    if codec == "libopus" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
        raise ValueError("Opus needs 8, 12, 16, 24 or 48 kHz")
    return encode_audio(samples, sample_rate, av_format, codec)
