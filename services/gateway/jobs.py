"""Turning an accepted upload into exactly one job: claim the idempotency key, check the audio, publish.

The claim (a row in PostgreSQL, written through the store's repository) and the publish happen inside one
database transaction (``all_or_nothing``) that commits only after the broker has confirmed the job. So a
failed publish rolls the claim back and the same upload can be tried again, while a duplicate that arrives
meanwhile waits on the claim's unique key and then finds it taken: a twice-delivered upload never makes a
second job.

Probing decodes the whole upload, so it runs in a thread: a long track never stalls the event loop that
serves other uploads, polls Telegram and keeps the broker's heartbeats.

An upload the checks refuse is recorded too: a ``JobFailed`` message goes to the store, which leaves an
errors row, and the caller tells the person what to do instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.amqp import Publisher
from services.common.audio import AudioLimits, AudioRejected
from services.common.blobs import BlobSettings, write_blob
from services.common.contracts import (
    AudioPayload,
    CryJob,
    JobFailed,
    JobKind,
    KwsJob,
    KwsResult,
    Language,
)
from services.common.logs import bind_ids
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    JOB_FAILED_KEY,
    JOBS_EXCHANGE,
    KWS_RESULT_KEY,
    KWS_SCAN_QUEUE,
    RESULTS_EXCHANGE,
)
from services.gateway.admission import (
    check_declared,
    check_declared_type,
    cry_request_id,
    probe_duration,
    track_id_of,
)
from services.gateway.transactions import all_or_nothing
from services.store import repository

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Admission:
    """What became of an upload; ``rejection`` is set when the checks refused it."""

    outcome: Outcome
    key: str
    rejection: AudioRejected | None = None


@dataclass(frozen=True)
class Recording:
    """A Telegram recording as the bot sees it before downloading: who sent it and what Telegram declares."""

    chat_id: int
    message_id: int
    language: Language
    declared_size: int | None
    declared_duration_s: float | None
    declared_mime_type: str | None = None


class JobSubmitter:
    """Publishes cry and kws jobs with broker confirms, claiming each idempotency key exactly once."""

    def __init__(
        self,
        publisher: Publisher,
        engine: AsyncEngine,
        *,
        inline_audio_max_bytes: int,
        blob_settings: BlobSettings | None = None,
    ) -> None:
        self._publisher = publisher
        self._engine = engine
        self._inline_audio_max_bytes = inline_audio_max_bytes
        self._blob_dir = (blob_settings or BlobSettings()).blob_dir

    async def submit_recording(
        self, recording: Recording, download: Callable[[], Awaitable[bytes]], limits: AudioLimits
    ) -> Admission:
        """Claim (chat_id, message_id), check the recording, download and probe it, publish a ``CryJob``."""
        request_id = cry_request_id(recording.chat_id, recording.message_id)
        bind_ids(request_id=request_id)
        async with all_or_nothing(self._engine) as session:
            claimed = await repository.claim_cry_request(
                session, request_id, recording.chat_id, recording.message_id, recording.language
            )
            if not claimed:
                return Admission("duplicate", request_id)
            try:
                check_declared(recording.declared_size, recording.declared_duration_s, limits)
                check_declared_type(recording.declared_mime_type)
                audio = await download()
                await asyncio.to_thread(probe_duration, audio, limits)
            except AudioRejected as rejection:
                await self.record_rejection("cry.classify", request_id, rejection)
                return Admission("rejected", request_id, rejection)
            job = CryJob(
                request_id=request_id,
                chat_id=recording.chat_id,
                message_id=recording.message_id,
                language=recording.language,
                audio=AudioPayload(inline=audio, size_bytes=len(audio)),
            )
            await self._publisher.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=request_id)
        return Admission("accepted", request_id)

    async def submit_track(self, audio: bytes, api_key_id: int, limits: AudioLimits) -> Admission:
        """Check a playback track and publish a ``KwsJob`` keyed by its sha256, once per distinct audio."""
        track_id = track_id_of(audio)
        bind_ids(track_id=track_id)
        try:
            await asyncio.to_thread(probe_duration, audio, limits)
        except AudioRejected as rejection:
            await self.record_rejection("kws.scan", track_id, rejection)
            return Admission("rejected", track_id, rejection)
        async with all_or_nothing(self._engine) as session:
            if not await repository.claim_track(session, track_id, len(audio), api_key_id):
                return Admission("duplicate", track_id)
            job = KwsJob(track_id=track_id, audio=self._payload(audio))
            await self._publisher.publish(job, JOBS_EXCHANGE, KWS_SCAN_QUEUE, message_id=track_id)
        return Admission("accepted", track_id)

    async def submit_stream_result(self, result: KwsResult, size_bytes: int, api_key_id: int) -> Outcome:
        """Claim a streamed track and hand its result to the store, once per distinct audio.

        The stream was scanned as it arrived, so there is no job: the result goes straight to the results
        exchange, as a kws worker would publish it. Audio claimed before (a POST or an earlier stream) keeps
        the answer it already has.
        """
        async with all_or_nothing(self._engine) as session:
            if not await repository.claim_track(session, result.track_id, size_bytes, api_key_id):
                return "duplicate"
            await self._publisher.publish(
                result, RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=result.track_id
            )
        return "accepted"

    async def record_rejection(self, job_kind: JobKind, key: str, rejection: AudioRejected) -> None:
        """Leave an errors row (through the store) for an upload refused at the edge."""
        failure = JobFailed(
            job_kind=job_kind, key=key, error_code=rejection.code, error_message=rejection.message, attempts=0
        )
        await self._publisher.publish(
            failure, RESULTS_EXCHANGE, JOB_FAILED_KEY, message_id=f"rejected:{job_kind}:{key}"
        )
        log.info("rejected %s %s: %s", job_kind, key, rejection.message)

    def _payload(self, audio: bytes) -> AudioPayload:
        """Small audio rides inside the job; larger tracks go by reference to a content-addressed blob."""
        if len(audio) <= self._inline_audio_max_bytes:
            return AudioPayload(inline=audio, size_bytes=len(audio))
        return AudioPayload(blob_sha256=write_blob(audio, self._blob_dir), size_bytes=len(audio))
