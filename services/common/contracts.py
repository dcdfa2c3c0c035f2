"""Every message that crosses RabbitMQ, as a versioned pydantic model.

A message's ``contract`` field names its type and version (``"CryJob.v1"``). A consumer validates the body
against the contract it expects; a body that fails validation is a poison message and goes to the dead-letter
queue with an errors row, never silently dropped. Adding an optional field keeps the version; changing or
removing one makes a new class with a new version, consumed side by side until old messages drain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Language = Literal["ru", "en"]
CryStatus = Literal["ok", "not_sure", "not_a_cry", "bad_audio"]
KwsStatus = Literal["done", "rejected"]
EnrollStatus = Literal["ready", "rejected"]
JobKind = Literal["cry.classify", "kws.scan", "kws.enroll"]
VOICE_ID_PATTERN = r"^v_[0-9a-f]{32}$"
VoiceId = Annotated[str, Field(pattern=VOICE_ID_PATTERN)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of all messages: immutable, strict about unknown fields, JSON on the wire.

    Bytes (inline audio) travel as base64: raw audio is not valid UTF-8, pydantic's default for bytes in JSON.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    def to_body(self) -> bytes:
        return self.model_dump_json().encode()


class AudioPayload(Contract):
    """Audio inline while small (a voice note); larger tracks by reference to a content-addressed blob."""

    inline: bytes | None = None
    blob_sha256: Sha256Hex | None = None
    size_bytes: int = Field(ge=1)


class CryJob(Contract):
    """A parent's recording to classify; ``request_id`` (``tg:<chat_id>:<message_id>``) is its key."""

    contract: Literal["CryJob.v1"] = "CryJob.v1"
    request_id: str = Field(min_length=1, max_length=200)
    chat_id: int
    message_id: int
    language: Language = "ru"
    audio: AudioPayload
    received_at: datetime = Field(default_factory=utc_now)


class VoiceModel(Contract):
    """An enrolled voice's artefact (``KwsVoiceHead.v2`` JSON, or a v1 one stored before it); it rides in
    the job, as workers have no database."""

    voice_id: VoiceId
    head: dict[str, object]


class KwsJob(Contract):
    """A playback track to scan for the wake word. ``track_id`` is the sha256 of the audio bytes; with
    ``voice`` the track is scanned with that enrolled voice's head instead of the base model's.
    ``model_version`` is the version the scan was claimed for; a worker running another refuses it."""

    contract: Literal["KwsJob.v1"] = "KwsJob.v1"
    track_id: Sha256Hex
    audio: AudioPayload
    voice: VoiceModel | None = None
    model_version: str | None = None
    received_at: datetime = Field(default_factory=utc_now)


def scan_key(track_id: str, voice_id: str | None, model_version: str | None = None) -> str:
    """A scan job's key (in logs and the errors table): the track, plus the voice when there is one, plus
    the model version it was claimed for (``<track>[:<voice>][@<version>]``)."""
    key = f"{track_id}:{voice_id}" if voice_id else track_id
    return f"{key}@{model_version}" if model_version else key


class EnrollmentClipPayload(Contract):
    """One enrollment clip: keyword clips carry the keyword's span in ms, keyword-free clips none."""

    name: str = Field(min_length=1, max_length=200)
    audio: AudioPayload
    keyword: bool
    span_ms: tuple[int, int] | None = None


class KwsEnrollJob(Contract):
    """A client's clips to adapt the spotter to its voice; ``voice_id`` is the job's key."""

    contract: Literal["KwsEnrollJob.v1"] = "KwsEnrollJob.v1"
    voice_id: VoiceId
    clips: list[EnrollmentClipPayload] = Field(min_length=1)
    seed: int = 0
    received_at: datetime = Field(default_factory=utc_now)


class KwsEnrollResult(Contract):
    """The adapted head and its validation figures, or why the clips could not be used."""

    contract: Literal["KwsEnrollResult.v1"] = "KwsEnrollResult.v1"
    voice_id: VoiceId
    status: EnrollStatus
    head: dict[str, object] | None = None
    model_version: str | None = None
    validation: dict[str, object] | None = None
    error_code: str | None = None
    error_message: str | None = None
    clip_blobs: list[Sha256Hex] = Field(default_factory=list)  # the store deletes them once this is stored
    received_at: datetime
    processed_at: datetime = Field(default_factory=utc_now)


class CryResult(Contract):
    """The classifier's answer for one request, exactly as ``CryAnalysis.to_json_dict()`` plus routing."""

    contract: Literal["CryResult.v1"] = "CryResult.v1"
    request_id: str
    chat_id: int
    message_id: int
    language: Language
    status: CryStatus
    label: str | None
    probabilities: dict[str, float]
    quality: dict[str, float | str | bool | None]
    model_version: str
    message: str
    received_at: datetime
    processed_at: datetime = Field(default_factory=utc_now)


class SkipInterval(Contract):
    """A span of playback, in ms from the track's start, during which the app mutes its microphone."""

    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    score: float


class KwsResult(Contract):
    """The spotter's answer for one track; ``rejected`` carries an error a client developer can act on."""

    contract: Literal["KwsResult.v1"] = "KwsResult.v1"
    track_id: Sha256Hex
    voice_id: VoiceId | None = None
    status: KwsStatus
    duration_ms: int | None = None
    intervals: list[SkipInterval] = Field(default_factory=list)
    model_version: str | None = None
    threshold: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    received_at: datetime
    processed_at: datetime = Field(default_factory=utc_now)


class JobFailed(Contract):
    """A job a worker gave up on, so the store can leave an errors row (workers never write the database)."""

    contract: Literal["JobFailed.v1"] = "JobFailed.v1"
    job_kind: JobKind
    key: str
    error_code: str
    error_message: str
    attempts: int
    failed_at: datetime = Field(default_factory=utc_now)


class Reply(Contract):
    """What the gateway sends back to a parent: the stored result, rendered in the user's language there."""

    contract: Literal["Reply.v1"] = "Reply.v1"
    result: CryResult


class FailedReply(Contract):
    """The parent's honest answer when a worker gave up on their recording (its job was dead-lettered)."""

    contract: Literal["FailedReply.v1"] = "FailedReply.v1"
    request_id: str
    chat_id: int
    message_id: int
    language: Language
    error_code: str
