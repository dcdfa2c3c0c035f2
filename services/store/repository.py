"""Every read and write of the database, as small async functions over an ``AsyncSession``.

Writes are idempotent: each row has a natural unique key (request, track, (chat_id, message_id), job) and
is written with ``INSERT … ON CONFLICT DO NOTHING``, so a redelivered message or a twice-delivered Telegram
update changes nothing. Functions that write commit their own transaction and return True only when they
inserted (or updated) a row, which is how callers tell "first time" from "seen before".

The gateway calls the claim, API-key and reply functions; the store's consumer and HTTP API the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.contracts import CryResult, JobFailed, KwsResult
from services.store.models import ApiKey, CryRequest, JobError, KwsResultRow, Prediction, Track

API_KEY_PREFIX = "ek_"


# --- claims (gateway) -----------------------------------------------------------------------------------


async def claim_cry_request(
    session: AsyncSession, request_id: str, chat_id: int, message_id: int, language: str
) -> bool:
    """Record a voice note before its job is published; True only the first time for (chat_id, message_id)."""
    statement = (
        insert(CryRequest)
        .values(request_id=request_id, chat_id=chat_id, message_id=message_id, language=language)
        .on_conflict_do_nothing()
        .returning(CryRequest.request_id)
    )
    return await _inserted(session, statement)


async def claim_track(session: AsyncSession, track_id: str, size_bytes: int, api_key_id: int | None) -> bool:
    """Record a posted track before its job is published; True only the first time this audio is seen."""
    statement = (
        insert(Track)
        .values(track_id=track_id, size_bytes=size_bytes, api_key_id=api_key_id)
        .on_conflict_do_nothing()
        .returning(Track.track_id)
    )
    return await _inserted(session, statement)


# --- API keys -------------------------------------------------------------------------------------------


def hash_api_key(raw_key: str) -> str:
    """Keys are 256 random bits, so a plain sha256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


async def create_api_key(session: AsyncSession, name: str) -> str:
    """Make a key for client app ``name``; returns the raw key, which is shown once and never stored."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, key_hash=hash_api_key(raw_key)))
    await session.commit()
    return raw_key


async def find_api_key(session: AsyncSession, raw_key: str) -> ApiKey | None:
    """The live key matching ``raw_key``, or None.

    The lookup goes by hash, so response time reveals nothing about the raw key; the final comparison is
    constant-time anyway.
    """
    key_hash = hash_api_key(raw_key)
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
    if row is None or not hmac.compare_digest(row.key_hash, key_hash):
        return None
    return row


# --- replies --------------------------------------------------------------------------------------------


async def mark_reply_sent(session: AsyncSession, request_id: str) -> bool:
    """The gateway marks a reply as sent to the parent; True only the first time (so it is sent once)."""
    statement = (
        update(CryRequest)
        .where(CryRequest.request_id == request_id, CryRequest.reply_sent_at.is_(None))
        .values(reply_sent_at=func.now())
        .returning(CryRequest.request_id)
    )
    return await _inserted(session, statement)


async def publish_reply_once(
    session: AsyncSession, request_id: str, publish: Callable[[CryResult], Awaitable[None]]
) -> bool:
    """Call ``publish`` with the stored result unless its Reply was already confirmed; True if it published.

    The request row stays locked (``FOR UPDATE``) from the check until the confirm is noted, so copies of a
    result handled at the same moment, in this process or another store, publish one Reply between them. If
    ``publish`` raises, nothing is noted and a later delivery tries again.
    """
    row = (
        await session.execute(
            select(CryRequest, Prediction)
            .join(Prediction, Prediction.request_id == CryRequest.request_id)
            .where(CryRequest.request_id == request_id, CryRequest.reply_published_at.is_(None))
            .with_for_update(of=CryRequest)
        )
    ).first()
    if row is None:
        await session.rollback()
        return False
    request, prediction = row
    await publish(stored_cry_result(request, prediction))
    request.reply_published_at = func.now()
    await session.commit()
    return True


def stored_cry_result(request: CryRequest, prediction: Prediction) -> CryResult:
    """The result as first stored: if a job ran twice, the parent gets the first answer, not the latest."""
    return CryResult(
        request_id=request.request_id,
        chat_id=request.chat_id,
        message_id=request.message_id,
        language=request.language,
        status=prediction.status,
        label=prediction.label,
        probabilities=prediction.probabilities,
        quality=prediction.quality,
        model_version=prediction.model_version,
        message=prediction.message,
        received_at=prediction.received_at,
        processed_at=prediction.processed_at,
    )


# --- results (store consumer) ---------------------------------------------------------------------------


async def store_cry_result(session: AsyncSession, result: CryResult) -> bool:
    """Write the classifier's answer; True if it was new. Creates the request row if no gateway claimed it."""
    await session.execute(
        insert(CryRequest)
        .values(
            request_id=result.request_id,
            chat_id=result.chat_id,
            message_id=result.message_id,
            language=result.language,
        )
        .on_conflict_do_nothing()
    )
    statement = (
        insert(Prediction)
        .values(
            request_id=result.request_id,
            status=result.status,
            label=result.label,
            probabilities=result.probabilities,
            quality=result.quality,
            model_version=result.model_version,
            message=result.message,
            received_at=result.received_at,
            processed_at=result.processed_at,
        )
        .on_conflict_do_nothing()
        .returning(Prediction.request_id)
    )
    return await _inserted(session, statement)


async def store_kws_result(session: AsyncSession, result: KwsResult) -> bool:
    """Write the spotter's answer for a track; True if it was new."""
    statement = (
        insert(KwsResultRow)
        .values(
            track_id=result.track_id,
            status=result.status,
            duration_ms=result.duration_ms,
            intervals=[interval.model_dump() for interval in result.intervals],
            model_version=result.model_version,
            threshold=result.threshold,
            error_code=result.error_code,
            error_message=result.error_message,
            received_at=result.received_at,
            processed_at=result.processed_at,
        )
        .on_conflict_do_nothing()
        .returning(KwsResultRow.track_id)
    )
    return await _inserted(session, statement)


async def store_job_failure(session: AsyncSession, failure: JobFailed) -> bool:
    """Leave an errors row for a job a worker gave up on; True if it was new."""
    return await record_error(
        session,
        job_kind=failure.job_kind,
        key=failure.key,
        error_code=failure.error_code,
        error_message=failure.error_message,
        attempts=failure.attempts,
        failed_at=failure.failed_at,
    )


async def record_error(
    session: AsyncSession,
    *,
    job_kind: str,
    key: str,
    error_code: str,
    error_message: str,
    attempts: int,
    failed_at: datetime | None = None,
) -> bool:
    """One errors row per (job_kind, key); True if it was new."""
    statement = (
        insert(JobError)
        .values(
            job_kind=job_kind,
            key=key,
            error_code=error_code,
            error_message=error_message,
            attempts=attempts,
            failed_at=failed_at or datetime.now(UTC),
        )
        .on_conflict_do_nothing()
        .returning(JobError.id)
    )
    return await _inserted(session, statement)


# --- reads (store HTTP) ---------------------------------------------------------------------------------

TrackState = Literal["unknown", "pending", "done", "rejected", "failed"]


@dataclass(frozen=True)
class TrackStatus:
    """Where a track stands: its result row when there is one, its errors row when a worker gave up."""

    state: TrackState
    result: KwsResultRow | None = None
    error: JobError | None = None


async def track_status(session: AsyncSession, track_id: str) -> TrackStatus:
    result = await session.get(KwsResultRow, track_id)
    if result is not None:
        return TrackStatus("done" if result.status == "done" else "rejected", result=result)
    error = await session.scalar(
        select(JobError).where(JobError.job_kind == "kws.scan", JobError.key == track_id)
    )
    if error is not None:
        return TrackStatus("failed", error=error)
    if await session.get(Track, track_id) is not None:
        return TrackStatus("pending")
    return TrackStatus("unknown")


async def request_summary(session: AsyncSession, request_id: str) -> dict | None:
    """A cry request with its prediction or error, for GET /v1/requests/{id}; None if unknown."""
    request = await session.get(CryRequest, request_id)
    if request is None:
        return None
    prediction = await session.get(Prediction, request_id)
    error = await session.scalar(
        select(JobError).where(JobError.job_kind == "cry.classify", JobError.key == request_id)
    )
    summary: dict = {
        "request_id": request.request_id,
        "language": request.language,
        "created_at": request.created_at.isoformat(),
        "reply_published": request.reply_published_at is not None,
        "reply_sent": request.reply_sent_at is not None,
        "state": "done" if prediction else "failed" if error else "pending",
    }
    if prediction is not None:
        summary["result"] = {
            "status": prediction.status,
            "label": prediction.label,
            "probabilities": prediction.probabilities,
            "quality": prediction.quality,
            "model_version": prediction.model_version,
            "message": prediction.message,
            "processed_at": prediction.processed_at.isoformat(),
        }
    if error is not None:
        summary["error"] = {"code": error.error_code, "message": error.error_message}
    return summary


async def _inserted(session: AsyncSession, statement) -> bool:
    """Run an INSERT/UPDATE … RETURNING, commit, and say whether it touched a row."""
    touched = (await session.execute(statement)).first() is not None
    await session.commit()
    return touched
