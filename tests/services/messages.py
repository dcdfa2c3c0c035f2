"""Messages the service tests publish, with unique keys so tests sharing a database never collide."""

from __future__ import annotations

import hashlib
import uuid

from services.common.contracts import (
    AudioPayload,
    CryJob,
    CryResult,
    KwsJob,
    KwsResult,
    SkipInterval,
    utc_now,
)


def unique_request() -> tuple[str, int, int]:
    """A request id and the (chat_id, message_id) it stands for."""
    chat_id, message_id = uuid.uuid4().int % 10**12, uuid.uuid4().int % 10**9
    return f"tg:{chat_id}:{message_id}", chat_id, message_id


def unique_track_id() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def cry_job(audio: bytes, *, language: str = "ru") -> CryJob:
    request_id, chat_id, message_id = unique_request()
    return CryJob(
        request_id=request_id,
        chat_id=chat_id,
        message_id=message_id,
        language=language,
        audio=AudioPayload(inline=audio, size_bytes=max(len(audio), 1)),
    )


def cry_job_by_reference(sha256: str, size_bytes: int) -> CryJob:
    request_id, chat_id, message_id = unique_request()
    return CryJob(
        request_id=request_id,
        chat_id=chat_id,
        message_id=message_id,
        audio=AudioPayload(blob_sha256=sha256, size_bytes=size_bytes),
    )


def kws_job(track_id: str, size_bytes: int, model_version: str | None = None) -> KwsJob:
    return KwsJob(
        track_id=track_id,
        audio=AudioPayload(blob_sha256=track_id, size_bytes=size_bytes),
        model_version=model_version,
    )


def cry_result(status: str = "ok") -> CryResult:
    request_id, chat_id, message_id = unique_request()
    return CryResult(
        request_id=request_id,
        chat_id=chat_id,
        message_id=message_id,
        language="en",
        status=status,
        label="hungry",
        probabilities={"hungry": 0.7, "tired": 0.3},
        quality={"reason": None, "duration_s": 6.0},
        model_version="test-1",
        message="The cry sounds most like hunger.",
        received_at=utc_now(),
    )


def kws_done(track_id: str) -> KwsResult:
    return KwsResult(
        track_id=track_id,
        status="done",
        duration_ms=12000,
        intervals=[SkipInterval(start_ms=1000, end_ms=1800, score=0.97)],
        model_version="test-1",
        threshold=0.5,
        received_at=utc_now(),
    )


def kws_rejected(track_id: str) -> KwsResult:
    return KwsResult(
        track_id=track_id,
        status="rejected",
        error_code="corrupt",
        error_message="The audio file is damaged and could not be decoded.",
        received_at=utc_now(),
    )
