"""What the gateway checks before any job exists: size, duration and that the bytes are audio at all.

Pure functions, no I/O. Declared facts (Telegram's ``file_size`` and ``duration``) are checked before a
download; the bytes themselves are then probed with the shared decoder, which stops early on an overlong
stream. No model runs here: a probe only proves the upload is audio within the limits.
"""

from __future__ import annotations

import hashlib

from services.common.audio import AudioLimits, AudioRejected, decode_audio

# Decoding at a low rate keeps the probe cheap; the workers decode again at their model's rate.
_PROBE_SAMPLE_RATE = 8000


def check_declared(size_bytes: int | None, duration_s: float | None, limits: AudioLimits) -> None:
    """Reject an upload from what its sender declares, before downloading it."""
    if size_bytes is not None and size_bytes > limits.max_bytes:
        limit_mb = limits.max_bytes / 1e6
        raise AudioRejected("too_large", f"{size_bytes / 1e6:.1f} MB, the limit is {limit_mb:.1f} MB")
    if duration_s is not None and duration_s > limits.max_duration_s:
        raise AudioRejected("too_long", f"{duration_s:.0f} s, the limit is {limits.max_duration_s:.0f} s")


def probe_duration(data: bytes, limits: AudioLimits) -> float:
    """Seconds of audio in ``data``.

    Raises ``AudioRejected`` for empty, oversized, overlong, corrupt or non-audio bytes.
    """
    return decode_audio(data, _PROBE_SAMPLE_RATE, limits).duration_s


def track_id_of(data: bytes) -> str:
    """A track's id is the sha256 of its bytes, so the same audio always maps to the same result."""
    return hashlib.sha256(data).hexdigest()


def cry_request_id(chat_id: int, message_id: int) -> str:
    """The idempotency key of a Telegram recording: one job per (chat, message), however often it arrives."""
    return f"tg:{chat_id}:{message_id}"


# Documents may be anything; these declared types can hold audio, everything else is refused unread.
_AUDIO_MIME_PREFIXES = ("audio/", "video/", "application/ogg", "application/octet-stream")


def check_declared_type(mime_type: str | None) -> None:
    """Refuse a document whose declared type cannot be audio (a PDF, a photo) without downloading it."""
    if mime_type and not mime_type.startswith(_AUDIO_MIME_PREFIXES):
        raise AudioRejected("not_audio", f"the file is {mime_type}")
