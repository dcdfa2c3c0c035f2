"""The schema: what the store keeps. Derived results only; no user audio is ever stored.

- ``api_keys``: client apps' keys, as sha256 hashes (the raw key is shown once, at creation).
- ``requests``: one row per Telegram voice note, claimed by the gateway on (chat_id, message_id) before it
  publishes a job, plus reply bookkeeping: when the store's Reply was confirmed by the broker, and when the
  gateway sent it to the parent.
- ``predictions``: the classifier's answer, one per request.
- ``tracks``: one row per playback track a client posted, claimed by the gateway on its sha256.
- ``kws_scans``: one row per scan asked for, claimed by the gateway on (track, voice, model version) before
  it publishes the job (or stores a stream's result); the newest claim of a (track, voice) is the answer
  that ``GET skip-kws`` serves, so a new model or voice never serves an older one's intervals.
- ``kws_results``: the spotter's answer, one per (track, voice, model version) (``done`` with intervals, or
  ``rejected``, why); ``voice_id`` is '' for the base model.
- ``voices``: enrolled voices, one per ``POST /v1/voices``, owned by one API key: status, the adapted head
  (the artefact), its validation figures and the blobs of its clips until the enrollment is settled.
- ``errors``: jobs a worker gave up on (after its retries, or poison), one per job.

The bot's tables (a chat is the user: the bot answers private chats):

- ``feedback``: a parent's verdict on one answer («угадал» / «не угадал» / what it really was); one row per
  request, the last answer wins. It keeps what the parent saw when rating: the reason the answer showed,
  the age band and the context answers (a snapshot; later taps do not change it).
- ``chat_settings``: what a chat chose in ``/settings``; audio donation is off unless a row says on, and the
  baby's age band (NULL: not given).
- ``context_answers``: the parent's context taps under one answer (time since the last feed, nappy...), one
  per (request, question), the last tap wins.
- ``donations``: the audio of a voice note, only from chats that opted in, deleted after the retention period
  (``python -m services.store purge-donations``, also run hourly by the store) or with ``/delete_my_data``.
- ``chat_notices``: when the bot last sent a chat a throttled notice (rate limit, "send audio"), so a flood of
  updates gets one answer, not one each, across gateway replicas.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CryRequest(Base):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id", name="uq_requests_chat_message"),
        Index("ix_requests_chat_created", "chat_id", "created_at"),
    )

    request_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    message_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    reply_published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reply_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The bot's "Слушаю…" message, edited into the answer by whichever gateway replica sends it.
    ack_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Telegram's id of the file's content: the same for every forward of one recording.
    file_unique_id: Mapped[str | None] = mapped_column(String(128))


class Prediction(Base):
    __tablename__ = "predictions"

    request_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    label: Mapped[str | None] = mapped_column(String(64))
    probabilities: Mapped[dict] = mapped_column(JSONB, nullable=False)
    quality: Mapped[dict] = mapped_column(JSONB, nullable=False)
    model_version: Mapped[str] = mapped_column(String(100), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stored_at: Mapped[datetime] = created_at_column()


class Track(Base):
    __tablename__ = "tracks"

    track_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    api_key_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("api_keys.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()


class KwsScanClaim(Base):
    __tablename__ = "kws_scans"

    track_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    voice_id: Mapped[str] = mapped_column(String(40), primary_key=True, server_default="")
    model_version: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = created_at_column()


class KwsResultRow(Base):
    __tablename__ = "kws_results"

    track_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    voice_id: Mapped[str] = mapped_column(String(40), primary_key=True, server_default="")
    # '' only for answers stored before versions were part of the key (their rows said no version).
    model_version: Mapped[str] = mapped_column(String(200), primary_key=True, server_default="")
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    intervals: Mapped[list] = mapped_column(JSONB, nullable=False)
    threshold: Mapped[float | None] = mapped_column(Float)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stored_at: Mapped[datetime] = created_at_column()


class Voice(Base):
    __tablename__ = "voices"

    voice_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending, ready, rejected, failed
    keyword_clips: Mapped[int] = mapped_column(Integer, nullable=False)
    free_speech_s: Mapped[float] = mapped_column(Float, nullable=False)
    head: Mapped[dict | None] = mapped_column(JSONB)
    model_version: Mapped[str | None] = mapped_column(String(200))
    validation: Mapped[dict | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # sha256 of the clips' blobs, so a failed enrollment (no result to list them) still deletes them.
    clip_blobs: Mapped[list] = mapped_column(JSONB, nullable=False, server_default="[]")
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobError(Base):
    __tablename__ = "errors"
    __table_args__ = (UniqueConstraint("job_kind", "key", name="uq_errors_job"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    error_code: Mapped[str] = mapped_column(String(64), nullable=False)
    error_message: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stored_at: Mapped[datetime] = created_at_column()


class Feedback(Base):
    __tablename__ = "feedback"

    request_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    # "right" or "wrong"; reported_label is what the parent says it really was, when they said.
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    reported_label: Mapped[str | None] = mapped_column(String(64))
    # The snapshot at the time of the verdict: the combined top reason shown, the age band, the context.
    shown_label: Mapped[str | None] = mapped_column(String(64))
    age_band: Mapped[str | None] = mapped_column(String(16))
    context: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class ChatSettings(Base):
    __tablename__ = "chat_settings"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    donate_audio: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    age_band: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = created_at_column()


class ContextAnswer(Base):
    __tablename__ = "context_answers"

    request_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    question: Mapped[str] = mapped_column(String(32), primary_key=True)
    answer: Mapped[str] = mapped_column(String(32), nullable=False)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    updated_at: Mapped[datetime] = created_at_column()


class Donation(Base):
    __tablename__ = "donations"

    request_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    audio: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class ChatNotice(Base):
    __tablename__ = "chat_notices"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
