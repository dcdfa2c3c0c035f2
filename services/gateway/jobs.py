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

A Telegram recording also passes fair use first, inside the same transaction and under a per-chat lock
(so several gateway replicas agree): a chat over its rate limit, or forwarding a file it sent within the
window, gets no claim and no job. Once claimed, the bot's "Слушаю…" message is sent and its id kept on the
request row, and an opted-in chat's audio is donated, both committing only with the job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.common.amqp import Publisher
from services.common.audio import AudioLimits, AudioRejected
from services.common.blobs import BlobSettings, delete_blob, write_blob
from services.common.contracts import (
    AudioPayload,
    CryJob,
    EnrollmentClipPayload,
    JobFailed,
    JobKind,
    KwsEnrollJob,
    KwsJob,
    KwsResult,
    Language,
    VoiceModel,
    scan_key,
    utc_now,
)
from services.common.enrollment import EnrollmentRejected
from services.common.logs import bind_ids
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    JOB_FAILED_KEY,
    JOBS_EXCHANGE,
    KWS_ENROLL_QUEUE,
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

Outcome = Literal["accepted", "duplicate", "rejected", "rate_limited", "repeat"]


@dataclass(frozen=True)
class Admission:
    """What became of an upload.

    ``rejection`` is set when the checks refused it; ``ack_message_id`` when the bot had already said
    "Слушаю…" (the refusal then replaces that message); ``retry_after_s`` when the chat is rate limited.
    """

    outcome: Outcome
    key: str
    rejection: AudioRejected | None = None
    ack_message_id: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class FairUse:
    """At most ``recordings`` per chat in any ``window_s``; a file forwarded again within it makes no job."""

    recordings: int
    window_s: float


@dataclass(frozen=True)
class EnrollmentClip:
    """One uploaded enrollment clip, checked: its bytes, its kind and its keyword span if given."""

    name: str
    audio: bytes
    keyword: bool
    span_ms: tuple[int, int] | None


@dataclass(frozen=True)
class Recording:
    """A Telegram recording as the bot sees it before downloading: who sent it and what Telegram declares."""

    chat_id: int
    message_id: int
    language: Language
    declared_size: int | None
    declared_duration_s: float | None
    declared_mime_type: str | None = None
    # Telegram's id of the file's content; the same when a recording is forwarded again.
    file_unique_id: str | None = None


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
        self,
        recording: Recording,
        download: Callable[[], Awaitable[bytes]],
        acknowledge: Callable[[], Awaitable[int]],
        limits: AudioLimits,
        fair_use: FairUse,
    ) -> Admission:
        """Fair use, claim (chat_id, message_id), check, say "Слушаю…", download, probe, publish a ``CryJob``.

        ``acknowledge`` sends the "Слушаю…" message and returns its id; it runs only once the recording is
        claimed and its declared size, duration and type pass, so a refusal is one message, not two.
        """
        request_id = cry_request_id(recording.chat_id, recording.message_id)
        bind_ids(request_id=request_id)
        async with all_or_nothing(self._engine) as session:
            refused = await self._fair_use(session, recording, request_id, fair_use)
            if refused is not None:
                return refused
            claimed = await repository.claim_cry_request(
                session,
                request_id,
                recording.chat_id,
                recording.message_id,
                recording.language,
                recording.file_unique_id,
            )
            if not claimed:
                return Admission("duplicate", request_id)
            ack_message_id = None
            try:
                check_declared(recording.declared_size, recording.declared_duration_s, limits)
                check_declared_type(recording.declared_mime_type)
                ack_message_id = await acknowledge()
                await repository.note_ack_message(session, request_id, ack_message_id)
                audio = await download()
                await asyncio.to_thread(probe_duration, audio, limits)
            except AudioRejected as rejection:
                await self.record_rejection("cry.classify", request_id, rejection)
                # The bot answers this refusal itself: the store's copy of the failure must not add another.
                await repository.mark_reply_sent(session, request_id)
                return Admission("rejected", request_id, rejection, ack_message_id=ack_message_id)
            if await repository.donates_audio(session, recording.chat_id):
                await repository.store_donation(session, request_id, recording.chat_id, audio, utc_now())
            job = CryJob(
                request_id=request_id,
                chat_id=recording.chat_id,
                message_id=recording.message_id,
                language=recording.language,
                audio=AudioPayload(inline=audio, size_bytes=len(audio)),
            )
            await self._publisher.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=request_id)
        return Admission("accepted", request_id, ack_message_id=ack_message_id)

    async def _fair_use(
        self, session: AsyncSession, recording: Recording, request_id: str, fair_use: FairUse
    ) -> Admission | None:
        """Refuse a recording over the chat's rate limit or repeating a file; None when it may go on."""
        await repository.lock_chat(session, recording.chat_id)
        if await repository.request_exists(session, recording.chat_id, recording.message_id):
            return Admission("duplicate", request_id)
        now = utc_now()
        since = now - timedelta(seconds=fair_use.window_s)
        if recording.file_unique_id and await repository.same_file_request(
            session, recording.chat_id, recording.file_unique_id, since
        ):
            return Admission("repeat", request_id)
        recent = await repository.recent_recordings(session, recording.chat_id, since)
        if recent.count >= fair_use.recordings and recent.oldest_at is not None:
            retry_after_s = (recent.oldest_at - since).total_seconds()
            return Admission("rate_limited", request_id, retry_after_s=max(retry_after_s, 1.0))
        return None

    async def submit_track(
        self,
        audio: bytes,
        api_key_id: int,
        limits: AudioLimits,
        model_version: str,
        voice: VoiceModel | None = None,
    ) -> Admission:
        """Check a playback track and publish a ``KwsJob`` keyed by its sha256, once per distinct audio,
        voice and model version: a track scanned before by an older model, or another voice, is scanned
        again, a repeat is answered from the store."""
        track_id = track_id_of(audio)
        bind_ids(track_id=track_id)
        voice_id = voice.voice_id if voice else None
        try:
            await asyncio.to_thread(probe_duration, audio, limits)
        except AudioRejected as rejection:  # bad audio for any model: the key names no version
            await self.record_rejection("kws.scan", scan_key(track_id, voice_id), rejection)
            return Admission("rejected", track_id, rejection)
        async with all_or_nothing(self._engine) as session:
            await repository.claim_track(session, track_id, len(audio), api_key_id)
            if not await repository.claim_scan(session, track_id, voice_id, model_version):
                return Admission("duplicate", track_id)
            payload = self._payload(audio)
            job = KwsJob(track_id=track_id, audio=payload, voice=voice, model_version=model_version)
            key = scan_key(track_id, voice_id, model_version)
            await self._publisher.publish(job, JOBS_EXCHANGE, KWS_SCAN_QUEUE, message_id=key)
        return Admission("accepted", track_id)

    async def submit_stream_result(self, result: KwsResult, size_bytes: int, api_key_id: int) -> Outcome:
        """Claim a streamed track's scan and hand its result to the store, once per distinct audio, voice
        and model version.

        The stream was scanned as it arrived, so there is no job: the result goes straight to the results
        exchange, as a kws worker would publish it. A scan claimed before (a POST or an earlier stream with
        the same voice and model) keeps the answer it already has.
        """
        track_id, voice_id, version = result.track_id, result.voice_id, result.model_version
        if version is None:
            raise ValueError("a stream's result must name the model version it was scanned with")
        async with all_or_nothing(self._engine) as session:
            await repository.claim_track(session, track_id, size_bytes, api_key_id)
            if not await repository.claim_scan(session, track_id, voice_id, version):
                return "duplicate"
            key = scan_key(track_id, voice_id, version)
            await self._publisher.publish(result, RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=key)
        return "accepted"

    async def submit_enrollment(
        self, voice_id: str, api_key_id: int, clips: list[EnrollmentClip], free_speech_s: float, seed: int
    ) -> None:
        """Record the voice (owned by ``api_key_id``, with its clips' blobs) and publish its ``KwsEnrollJob``,
        both or neither; neither deletes the blobs again."""
        payloads = [
            EnrollmentClipPayload(
                name=clip.name, audio=self._payload(clip.audio), keyword=clip.keyword, span_ms=clip.span_ms
            )
            for clip in clips
        ]
        keyword_clips = sum(clip.keyword for clip in clips)
        blobs = [payload.audio.blob_sha256 for payload in payloads if payload.audio.blob_sha256]
        try:
            async with all_or_nothing(self._engine) as session:
                await repository.claim_voice(
                    session, voice_id, api_key_id, keyword_clips, free_speech_s, blobs
                )
                job = KwsEnrollJob(voice_id=voice_id, clips=payloads, seed=seed)
                await self._publisher.publish(job, JOBS_EXCHANGE, KWS_ENROLL_QUEUE, message_id=voice_id)
        except BaseException:
            for blob in blobs:  # no job will read them, and no voice row lists them
                delete_blob(blob, self._blob_dir)
            raise

    async def record_rejection(
        self, job_kind: JobKind, key: str, rejection: AudioRejected | EnrollmentRejected
    ) -> None:
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
