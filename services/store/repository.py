"""Every read and write of the database, as small async functions over an ``AsyncSession``.

Writes are idempotent: each row has a natural unique key (request, track, (chat_id, message_id), job) and
is written with ``INSERT … ON CONFLICT DO NOTHING``, so a redelivered message or a twice-delivered Telegram
update changes nothing. Functions that write commit their own transaction and return True only when they
inserted (or updated) a row, which is how callers tell "first time" from "seen before".

The gateway calls the claim, API-key, reply and bot functions (feedback, settings, donations, a chat's
data); the store's consumer, HTTP API and CLI the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, exists, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.contracts import CryResult, JobFailed, KwsEnrollResult, KwsResult, scan_key
from services.store.models import (
    ApiKey,
    ChatNotice,
    ChatSettings,
    ContextAnswer,
    CryRequest,
    Donation,
    Feedback,
    JobError,
    KwsResultRow,
    KwsScanClaim,
    Prediction,
    Track,
    Voice,
)

API_KEY_PREFIX = "ek_"


# --- claims (gateway) -----------------------------------------------------------------------------------


async def claim_cry_request(
    session: AsyncSession,
    request_id: str,
    chat_id: int,
    message_id: int,
    language: str,
    file_unique_id: str | None = None,
) -> bool:
    """Record a voice note before its job is published; True only the first time for (chat_id, message_id)."""
    statement = (
        insert(CryRequest)
        .values(
            request_id=request_id,
            chat_id=chat_id,
            message_id=message_id,
            language=language,
            file_unique_id=file_unique_id,
        )
        .on_conflict_do_nothing()
        .returning(CryRequest.request_id)
    )
    return await _inserted(session, statement)


async def claim_track(session: AsyncSession, track_id: str, size_bytes: int, api_key_id: int | None) -> bool:
    """Record a posted or streamed track's audio; True only the first time this audio is seen.

    A track seen before is written too (a write that changes nothing), so its row stays locked until the
    claim's transaction ends: the store, deciding whether to delete the track's blob, waits for a scan
    being claimed right now instead of deleting the blob its job is about to read
    (``delete_blob_unless_pending``).
    """
    statement = insert(Track).values(track_id=track_id, size_bytes=size_bytes, api_key_id=api_key_id)
    statement = statement.on_conflict_do_update(
        index_elements=[Track.track_id], set_={"track_id": statement.excluded.track_id}
    ).returning(literal_column("xmax = 0"))  # PostgreSQL: true when the row was inserted, not updated
    inserted = bool((await session.execute(statement)).scalar())
    await session.commit()
    return inserted


async def claim_voice(
    session: AsyncSession,
    voice_id: str,
    api_key_id: int,
    keyword_clips: int,
    free_speech_s: float,
    clip_blobs: list[str] | None = None,
) -> bool:
    """Record an enrollment before its job is published; the voice belongs to ``api_key_id`` only."""
    statement = (
        insert(Voice)
        .values(
            voice_id=voice_id,
            api_key_id=api_key_id,
            status="pending",
            keyword_clips=keyword_clips,
            free_speech_s=free_speech_s,
            clip_blobs=clip_blobs or [],
        )
        .on_conflict_do_nothing()
        .returning(Voice.voice_id)
    )
    return await _inserted(session, statement)


async def claim_scan(session: AsyncSession, track_id: str, voice_id: str | None, model_version: str) -> bool:
    """Record a scan before its job is published (or a stream's result is stored); True only the first
    time for (track, voice, model version), so a new model or voice scans again and a repeat does not."""
    statement = (
        insert(KwsScanClaim)
        .values(track_id=track_id, voice_id=voice_id or "", model_version=model_version)
        .on_conflict_do_nothing()
        .returning(KwsScanClaim.track_id)
    )
    return await _inserted(session, statement)


# --- voices ---------------------------------------------------------------------------------------------


async def find_voice(session: AsyncSession, voice_id: str, api_key_id: int) -> Voice | None:
    """The voice if it exists and belongs to this key; another key's voice is as absent as no voice."""
    return await session.scalar(
        select(Voice).where(Voice.voice_id == voice_id, Voice.api_key_id == api_key_id)
    )


async def delete_voice(session: AsyncSession, voice_id: str, api_key_id: int) -> bool:
    """Delete a voice, its artefact, its scan claims and its cached results; True if it existed."""
    deleted = (
        await session.execute(
            delete(Voice)
            .where(Voice.voice_id == voice_id, Voice.api_key_id == api_key_id)
            .returning(Voice.voice_id)
        )
    ).first()
    if deleted is not None:
        await session.execute(delete(KwsResultRow).where(KwsResultRow.voice_id == voice_id))
        await session.execute(delete(KwsScanClaim).where(KwsScanClaim.voice_id == voice_id))
    await session.commit()
    return deleted is not None


def voice_summary(voice: Voice) -> dict:
    """What ``GET /v1/voices/{id}`` says: status, validation figures, the error if rejected."""
    summary: dict = {
        "voice_id": voice.voice_id,
        "status": voice.status,
        "keyword_clips": voice.keyword_clips,
        "free_speech_s": voice.free_speech_s,
        "created_at": voice.created_at.isoformat(),
    }
    if voice.status == "ready":
        summary["model_version"] = voice.model_version
        summary["threshold"] = voice.head["threshold"] if voice.head else None
        summary["validation"] = voice.validation
    if voice.error_code is not None:
        summary["error"] = {"code": voice.error_code, "message": voice.error_message}
    return summary


async def store_enroll_result(session: AsyncSession, result: KwsEnrollResult) -> bool:
    """Write an enrollment's outcome onto its pending voice; False if already settled or deleted."""
    statement = (
        update(Voice)
        .where(Voice.voice_id == result.voice_id, Voice.status == "pending")
        .values(
            status=result.status,
            head=result.head,
            model_version=result.model_version,
            validation=result.validation,
            error_code=result.error_code,
            error_message=result.error_message,
            finished_at=result.processed_at,
            clip_blobs=[],  # the result lists them; the store deletes them once this is written
        )
        .returning(Voice.voice_id)
    )
    return await _inserted(session, statement)


async def mark_voice_failed(session: AsyncSession, failure: JobFailed) -> list[str]:
    """A worker gave up on an enrollment: the voice says so (the errors row has the details too). Returns
    its clip blobs, to delete (none when the voice was settled or deleted before)."""
    pending = (Voice.voice_id == failure.key) & (Voice.status == "pending")
    blobs = await session.scalar(select(Voice.clip_blobs).where(pending).with_for_update())
    await session.execute(
        update(Voice)
        .where(pending)
        .values(
            status="failed",
            error_code=failure.error_code,
            error_message=failure.error_message,
            finished_at=failure.failed_at,
            clip_blobs=[],
        )
    )
    await session.commit()
    return list(blobs or [])


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


async def ack_message_of(session: AsyncSession, request_id: str) -> int | None:
    """The bot's "Слушаю…" message for a request, to edit into the answer; None if it has none."""
    return await session.scalar(select(CryRequest.ack_message_id).where(CryRequest.request_id == request_id))


async def publish_failure_reply_once(
    session: AsyncSession, request_id: str, publish: Callable[[CryRequest], Awaitable[None]]
) -> bool:
    """Like ``publish_reply_once``, for a request whose job a worker gave up on (no prediction to send)."""
    request = await session.scalar(
        select(CryRequest)
        .where(CryRequest.request_id == request_id, CryRequest.reply_published_at.is_(None))
        .with_for_update()
    )
    if request is None:
        await session.rollback()
        return False
    await publish(request)
    request.reply_published_at = func.now()
    await session.commit()
    return True


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
    """Write the spotter's answer for a track (and voice); True if it was new. The answer of a voice deleted
    meanwhile is dropped, so deletion leaves no cached result behind."""
    if result.voice_id is not None:
        voice_exists = await session.scalar(select(exists().where(Voice.voice_id == result.voice_id)))
        if not voice_exists:
            await session.rollback()
            return False
    statement = (
        insert(KwsResultRow)
        .values(
            track_id=result.track_id,
            voice_id=result.voice_id or "",
            status=result.status,
            duration_ms=result.duration_ms,
            intervals=[interval.model_dump() for interval in result.intervals],
            model_version=result.model_version or "",
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


async def track_status(session: AsyncSession, track_id: str, voice_id: str | None = None) -> TrackStatus:
    """The state of a track's scan with the base model, or with ``voice_id``'s head.

    The newest claim of (track, voice) says which model version's answer is due: its result, its errors
    row, or pending. A result stored without a claim (written straight to the results exchange) is served
    as it is, the newest first.
    """
    claim = await session.scalar(
        select(KwsScanClaim)
        .where(KwsScanClaim.track_id == track_id, KwsScanClaim.voice_id == (voice_id or ""))
        .order_by(KwsScanClaim.created_at.desc(), KwsScanClaim.model_version.desc())
        .limit(1)
    )
    if claim is None:
        return await _unclaimed_status(session, track_id, voice_id)
    return await _scan_status(session, track_id, voice_id, claim.model_version)


async def _scan_status(
    session: AsyncSession, track_id: str, voice_id: str | None, model_version: str
) -> TrackStatus:
    result = await session.get(KwsResultRow, (track_id, voice_id or "", model_version))
    if result is not None:
        return TrackStatus("done" if result.status == "done" else "rejected", result=result)
    key = scan_key(track_id, voice_id, model_version)
    error = await session.scalar(select(JobError).where(JobError.job_kind == "kws.scan", JobError.key == key))
    return TrackStatus("pending") if error is None else TrackStatus("failed", error=error)


async def _unclaimed_status(session: AsyncSession, track_id: str, voice_id: str | None) -> TrackStatus:
    result = await session.scalar(
        select(KwsResultRow)
        .where(KwsResultRow.track_id == track_id, KwsResultRow.voice_id == (voice_id or ""))
        .order_by(KwsResultRow.processed_at.desc())
        .limit(1)
    )
    if result is not None:
        return TrackStatus("done" if result.status == "done" else "rejected", result=result)
    key = scan_key(track_id, voice_id)
    error = await session.scalar(select(JobError).where(JobError.job_kind == "kws.scan", JobError.key == key))
    return TrackStatus("unknown") if error is None else TrackStatus("failed", error=error)


async def track_scans_pending(session: AsyncSession, track_id: str) -> bool:
    """Whether any scan of this track (any voice, any model version) still waits for its answer."""
    claims = await session.scalars(select(KwsScanClaim).where(KwsScanClaim.track_id == track_id))
    for claim in claims.all():
        status = await _scan_status(session, track_id, claim.voice_id or None, claim.model_version)
        if status.state == "pending":
            return True
    return False


async def delete_blob_unless_pending(
    session: AsyncSession, track_id: str, delete_blob: Callable[[], object]
) -> bool:
    """Call ``delete_blob`` unless a scan of the track still waits for its answer; True if it did.

    Under the track row's lock, which a gateway claiming a scan of the same audio holds until its job is
    published (``claim_track``): such a claim is either seen here, or made after the blob is gone, and
    then its gateway writes the blob again.
    """
    await session.execute(select(Track.track_id).where(Track.track_id == track_id).with_for_update())
    pending = await track_scans_pending(session, track_id)
    if not pending:
        delete_blob()
    await session.commit()
    return not pending


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


# --- the bot: fair use ----------------------------------------------------------------------------------


async def lock_chat(session: AsyncSession, chat_id: int) -> None:
    """Serialise one chat's recordings until the transaction ends, across every gateway replica.

    Inside ``all_or_nothing`` the lock lasts until the claim commits or rolls back, so two recordings of a
    chat arriving at once cannot both slip under the rate limit.
    """
    key = func.hashtextextended(f"earshot.chat:{chat_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


@dataclass(frozen=True)
class RecentRecordings:
    """A chat's recordings since some moment: how many, and when the oldest of them arrived."""

    count: int
    oldest_at: datetime | None


async def recent_recordings(session: AsyncSession, chat_id: int, since: datetime) -> RecentRecordings:
    row = (
        await session.execute(
            select(func.count(), func.min(CryRequest.created_at)).where(
                CryRequest.chat_id == chat_id, CryRequest.created_at >= since
            )
        )
    ).one()
    return RecentRecordings(count=row[0], oldest_at=row[1])


async def request_exists(session: AsyncSession, chat_id: int, message_id: int) -> bool:
    found = await session.scalar(
        select(CryRequest.request_id).where(
            CryRequest.chat_id == chat_id, CryRequest.message_id == message_id
        )
    )
    return found is not None


async def same_file_request(
    session: AsyncSession, chat_id: int, file_unique_id: str, since: datetime
) -> str | None:
    """A request of this chat since ``since`` carrying the same Telegram file (a forward of it), if any."""
    return await session.scalar(
        select(CryRequest.request_id)
        .where(
            CryRequest.chat_id == chat_id,
            CryRequest.file_unique_id == file_unique_id,
            CryRequest.created_at >= since,
        )
        .limit(1)
    )


async def note_ack_message(session: AsyncSession, request_id: str, ack_message_id: int) -> None:
    """Remember the "Слушаю…" message, so any gateway replica can edit it into the answer later."""
    await session.execute(
        update(CryRequest).where(CryRequest.request_id == request_id).values(ack_message_id=ack_message_id)
    )
    await session.commit()


async def claim_notice(session: AsyncSession, chat_id: int, kind: str, min_interval_s: float) -> bool:
    """True when the chat may get notice ``kind`` now: at most one per ``min_interval_s``, across replicas."""
    statement = (
        insert(ChatNotice)
        .values(chat_id=chat_id, kind=kind, sent_at=func.now())
        .on_conflict_do_update(
            index_elements=[ChatNotice.chat_id, ChatNotice.kind],
            set_={"sent_at": func.now()},
            where=ChatNotice.sent_at < func.now() - timedelta(seconds=min_interval_s),
        )
        .returning(ChatNotice.chat_id)
    )
    return await _inserted(session, statement)


@dataclass(frozen=True)
class RecentResults:
    """How many cry results the store wrote since some moment, and when the first of them was written."""

    count: int
    first_at: datetime | None


async def recent_cry_results(session: AsyncSession, since: datetime) -> RecentResults:
    row = (
        await session.execute(
            select(func.count(), func.min(Prediction.stored_at)).where(Prediction.stored_at >= since)
        )
    ).one()
    return RecentResults(count=row[0], first_at=row[1])


# --- the bot: feedback ----------------------------------------------------------------------------------


async def prediction_of(session: AsyncSession, request_id: str) -> Prediction | None:
    return await session.get(Prediction, request_id)


@dataclass(frozen=True)
class AnswerSnapshot:
    """What an answer showed when the parent rated it: its top reason and the evidence beside the sound."""

    shown_label: str | None = None
    age_band: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)


async def record_feedback(
    session: AsyncSession,
    request_id: str,
    chat_id: int,
    verdict: str,
    reported_label: str | None,
    snapshot: AnswerSnapshot | None = None,
) -> bool:
    """Store a parent's verdict on an answer; the last one wins. False if the request has no answer (now).

    The key is the request, so a double tap or a change of mind updates one row instead of adding one. The
    ``snapshot`` (what the answer showed, the age band and the context answers) is taken anew with each
    verdict: it is what the parent saw when they last rated.
    """
    if await session.get(Prediction, request_id) is None:
        return False
    snapshot = snapshot or AnswerSnapshot()
    values = {
        "verdict": verdict,
        "reported_label": reported_label,
        "shown_label": snapshot.shown_label,
        "age_band": snapshot.age_band,
        "context": dict(snapshot.context),
    }
    statement = (
        insert(Feedback)
        .values(request_id=request_id, chat_id=chat_id, **values)
        .on_conflict_do_update(
            index_elements=[Feedback.request_id], set_={**values, "updated_at": func.now()}
        )
        .returning(Feedback.request_id)
    )
    return await _inserted(session, statement)


async def feedback_of(session: AsyncSession, request_id: str) -> Feedback | None:
    return await session.get(Feedback, request_id)


@dataclass(frozen=True)
class RatedAnswer:
    """One answer a parent rated: what the bot said (and from what), and what the parent said.

    ``predicted_label`` is the reason the answer showed (the model's label for rows from before answers
    combined the evidence); ``audio_probabilities``, ``age_band`` and ``context`` let the report recompute the
    answer from the sound alone, with the age, and with the context.
    """

    predicted_label: str | None
    status: str
    verdict: str
    reported_label: str | None
    audio_probabilities: Mapping[str, float] = field(default_factory=dict)
    age_band: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)


async def rated_answers(session: AsyncSession) -> list[RatedAnswer]:
    rows = await session.execute(
        select(
            func.coalesce(Feedback.shown_label, Prediction.label),
            Prediction.status,
            Feedback.verdict,
            Feedback.reported_label,
            Prediction.probabilities,
            Feedback.age_band,
            Feedback.context,
        ).join(Feedback, Feedback.request_id == Prediction.request_id)
    )
    return [RatedAnswer(*row) for row in rows]


# --- the bot: the baby's age and context taps ----------------------------------------------------------


async def age_band_of(session: AsyncSession, chat_id: int) -> str | None:
    """The baby's age band the chat gave in /settings; None when not given."""
    return await session.scalar(select(ChatSettings.age_band).where(ChatSettings.chat_id == chat_id))


async def set_age_band(session: AsyncSession, chat_id: int, age_band: str | None) -> None:
    """Set the baby's age band, or delete it (None); donation stays as it was."""
    await session.execute(
        insert(ChatSettings)
        .values(chat_id=chat_id, donate_audio=False, age_band=age_band)
        .on_conflict_do_update(
            index_elements=[ChatSettings.chat_id], set_={"age_band": age_band, "updated_at": func.now()}
        )
    )
    await session.commit()


async def record_context_answer(
    session: AsyncSession, request_id: str, chat_id: int, question: str, answer: str
) -> bool:
    """Store a context tap under an answer; the last answer per question wins. True if it changed anything.

    The request must be this chat's and answered (a tap names its voice note; the chat comes from Telegram),
    else nothing is written. A second tap on the same answer changes nothing and returns False.
    """
    owned = await session.scalar(
        select(CryRequest.request_id)
        .join(Prediction, Prediction.request_id == CryRequest.request_id)
        .where(CryRequest.request_id == request_id, CryRequest.chat_id == chat_id)
    )
    if owned is None:
        return False
    statement = (
        insert(ContextAnswer)
        .values(request_id=request_id, question=question, answer=answer, chat_id=chat_id)
        .on_conflict_do_update(
            index_elements=[ContextAnswer.request_id, ContextAnswer.question],
            set_={"answer": answer, "updated_at": func.now()},
            where=ContextAnswer.answer != answer,
        )
        .returning(ContextAnswer.request_id)
    )
    return await _inserted(session, statement)


async def context_answers_of(session: AsyncSession, request_id: str) -> dict[str, str]:
    """The parent's context answers under one answer, question -> answer."""
    rows = await session.execute(
        select(ContextAnswer.question, ContextAnswer.answer).where(ContextAnswer.request_id == request_id)
    )
    return {question: answer for question, answer in rows}


async def claim_first_notice(session: AsyncSession, chat_id: int, kind: str) -> bool:
    """True only the first time a chat gets notice ``kind`` (until its data is deleted): never a second."""
    statement = (
        insert(ChatNotice)
        .values(chat_id=chat_id, kind=kind, sent_at=func.now())
        .on_conflict_do_nothing()
        .returning(ChatNotice.chat_id)
    )
    return await _inserted(session, statement)


# --- the bot: audio donation ----------------------------------------------------------------------------


async def donates_audio(session: AsyncSession, chat_id: int) -> bool:
    """Off unless the chat turned it on in /settings."""
    return bool(
        await session.scalar(select(ChatSettings.donate_audio).where(ChatSettings.chat_id == chat_id))
    )


async def set_donation(session: AsyncSession, chat_id: int, donate: bool) -> int:
    """Turn donation on or off; off also deletes what was donated. Returns how many were deleted."""
    await session.execute(
        insert(ChatSettings)
        .values(chat_id=chat_id, donate_audio=donate)
        .on_conflict_do_update(
            index_elements=[ChatSettings.chat_id], set_={"donate_audio": donate, "updated_at": func.now()}
        )
    )
    deleted = 0
    if not donate:
        deleted = (await session.execute(delete(Donation).where(Donation.chat_id == chat_id))).rowcount
    await session.commit()
    return deleted


async def store_donation(
    session: AsyncSession, request_id: str, chat_id: int, audio: bytes, donated_at: datetime
) -> bool:
    """Keep the audio of an opted-in chat's recording; written once per request."""
    statement = (
        insert(Donation)
        .values(request_id=request_id, chat_id=chat_id, audio=audio, created_at=donated_at)
        .on_conflict_do_nothing()
        .returning(Donation.request_id)
    )
    return await _inserted(session, statement)


async def purge_donations(session: AsyncSession, older_than: datetime) -> int:
    """Delete donated audio kept since before ``older_than``; how many recordings were deleted."""
    deleted = (await session.execute(delete(Donation).where(Donation.created_at < older_than))).rowcount
    await session.commit()
    return deleted


# --- the bot: a chat's data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatData:
    """What the store holds about one chat, for /my_data and the /delete_my_data confirmation."""

    requests: int
    predictions: int
    feedback: int
    donations: int
    errors: int
    first_request_at: datetime | None = None
    oldest_donation_at: datetime | None = None
    donates_audio: bool = False
    age_band: str | None = None
    context_answers: int = 0

    def holds_anything(self) -> bool:
        counts = (self.requests, self.predictions, self.feedback, self.donations, self.errors)
        return any(counts) or self.context_answers > 0 or self.age_band is not None


def _chat_errors(chat_id: int):
    """The errors rows about a chat's recordings, keyed by request id ``tg:<chat_id>:<message_id>``."""
    return JobError.key.startswith(f"tg:{chat_id}:", autoescape=True)


async def chat_data(session: AsyncSession, chat_id: int) -> ChatData:
    requests = (
        await session.execute(
            select(func.count(), func.min(CryRequest.created_at)).where(CryRequest.chat_id == chat_id)
        )
    ).one()
    donations = (
        await session.execute(
            select(func.count(), func.min(Donation.created_at)).where(Donation.chat_id == chat_id)
        )
    ).one()
    predictions = await session.scalar(
        select(func.count())
        .select_from(Prediction)
        .join(CryRequest, CryRequest.request_id == Prediction.request_id)
        .where(CryRequest.chat_id == chat_id)
    )
    return ChatData(
        requests=requests[0],
        predictions=predictions or 0,
        feedback=await session.scalar(select(func.count()).where(Feedback.chat_id == chat_id)) or 0,
        donations=donations[0],
        errors=await session.scalar(select(func.count()).where(_chat_errors(chat_id))) or 0,
        first_request_at=requests[1],
        oldest_donation_at=donations[1],
        donates_audio=await donates_audio(session, chat_id),
        age_band=await age_band_of(session, chat_id),
        context_answers=await session.scalar(select(func.count()).where(ContextAnswer.chat_id == chat_id))
        or 0,
    )


async def delete_chat_data(session: AsyncSession, chat_id: int) -> ChatData:
    """Delete everything about a chat: requests, predictions, feedback, context answers, donations, errors,
    settings (with the age band) and notices.

    Returns what was there, counted in the same transaction as the deletion.
    """
    held = await chat_data(session, chat_id)
    await session.execute(delete(Feedback).where(Feedback.chat_id == chat_id))
    await session.execute(delete(ContextAnswer).where(ContextAnswer.chat_id == chat_id))
    await session.execute(delete(Donation).where(Donation.chat_id == chat_id))
    await session.execute(delete(JobError).where(_chat_errors(chat_id)))
    await session.execute(delete(CryRequest).where(CryRequest.chat_id == chat_id))  # predictions cascade
    await session.execute(delete(ChatSettings).where(ChatSettings.chat_id == chat_id))
    await session.execute(delete(ChatNotice).where(ChatNotice.chat_id == chat_id))
    await session.commit()
    return held


async def _inserted(session: AsyncSession, statement) -> bool:
    """Run an INSERT/UPDATE … RETURNING, commit, and say whether it touched a row."""
    touched = (await session.execute(statement)).first() is not None
    await session.commit()
    return touched
