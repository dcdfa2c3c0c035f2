"""The store's consumer of ``store.results``: write each result once, send the parent's reply once, then ack.

- ``CryResult``: write the prediction (``ON CONFLICT DO NOTHING``), then, unless the stored request says its
  Reply was already confirmed, publish a Reply built from the stored row to ``earshot.replies`` and note the
  confirm. A redelivered result writes nothing; it re-publishes the Reply only if the first confirm was never
  noted (the gateway dedupes with ``mark_reply_sent``), so no reply is lost and none is sent twice.
- ``KwsResult``: write the track's result, wake up long-polling HTTP clients, delete the track's blob.
- ``KwsEnrollResult``: write the voice's head and validation figures (or why it was rejected), delete the
  clips' blobs.
- ``JobFailed``: leave an errors row (and delete a failed track's blob; mark a failed enrollment's voice
  and delete its clips' blobs, which the voice row lists).
  For a parent's recording, publish a ``FailedReply`` once, exactly like a result's Reply, so the parent
  hears that it failed instead of nothing. (A recording the gateway refused at the edge also comes here;
  the gateway answered it already and marked the reply sent, so it drops that copy.)

While the database is unreachable the delivery is neither acked nor nacked (a nack would count against the
quorum queue's delivery limit and dead-letter good results): the write is retried with backoff until the
database is back, results wait in the queue meanwhile, and ``/readyz`` says not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from aio_pika.abc import AbstractIncomingMessage
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.amqp import Publisher, safely
from services.common.blobs import delete_blob
from services.common.contracts import CryResult, FailedReply, JobFailed, KwsEnrollResult, KwsResult, Reply
from services.common.metrics import JOB_END_TO_END_SECONDS, RESULT_WRITE_SECONDS, seconds_since
from services.common.topology import REPLIES_EXCHANGE, REPLY_KEY
from services.store import repository
from services.store.db import is_database_unavailable
from services.store.models import CryRequest
from services.store.settings import StoreSettings

log = logging.getLogger(__name__)

AnyResult = CryResult | KwsResult | KwsEnrollResult | JobFailed
ResultMessage = Annotated[AnyResult, Field(discriminator="contract")]
_RESULT_ADAPTER: TypeAdapter[AnyResult] = TypeAdapter(ResultMessage)

T = TypeVar("T")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass
class DatabaseHealth:
    """Whether the last database operation of the results consumer worked; read by ``/readyz``."""

    reachable: bool = True
    last_error: str | None = None

    def failed(self, error: BaseException) -> None:
        self.reachable = False
        self.last_error = f"{type(error).__name__}: {error}"

    def succeeded(self) -> None:
        self.reachable = True
        self.last_error = None


@dataclass
class TrackSignals:
    """Wakes up HTTP long-polls in this process as soon as a track's result is stored."""

    _events: dict[str, asyncio.Event] = field(default_factory=dict)

    def notify(self, track_id: str) -> None:
        event = self._events.pop(track_id, None)
        if event is not None:
            event.set()

    async def wait(self, track_id: str, timeout_s: float) -> None:
        """Return when ``notify(track_id)`` is called or after ``timeout_s``, whichever comes first."""
        event = self._events.setdefault(track_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)


def observe_stored(result: AnyResult, write_seconds: float) -> None:
    """The write's latency, and for an answer the time since the gateway received its job."""
    RESULT_WRITE_SECONDS.labels(result.contract).observe(write_seconds)
    if isinstance(result, CryResult | KwsResult):
        kind = "cry.classify" if isinstance(result, CryResult) else "kws.scan"
        JOB_END_TO_END_SECONDS.labels(kind).observe(seconds_since(result.received_at))


def parse_result(body: bytes) -> AnyResult:
    return _RESULT_ADAPTER.validate_json(body)


class ResultWriter:
    """The message handler of ``store.results``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        settings: StoreSettings,
        health: DatabaseHealth,
        signals: TrackSignals,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.settings = settings
        self.health = health
        self.signals = signals

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            result = parse_result(message.body)
        except ValidationError as error:
            await self._reject_poison(message, "invalid_message", error)
            return
        try:
            await self._store(result, message)
        except IntegrityError as error:
            # E.g. a result whose (chat_id, message_id) belongs to another request: retrying cannot fix it.
            await self._reject_poison(message, "conflicting_result", error)

    async def _store(self, result: AnyResult, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        if isinstance(result, CryResult):
            if not await self._store_cry_result(result):
                await safely(message.nack(requeue=True), "nack")
                return
        elif isinstance(result, KwsResult):
            await self._with_database(lambda session: repository.store_kws_result(session, result))
            await self._track_settled(result.track_id)
            log.info("kws %s: %s result stored", result.track_id, result.status)
        elif isinstance(result, KwsEnrollResult):
            await self._with_database(lambda session: repository.store_enroll_result(session, result))
            for blob in result.clip_blobs:
                delete_blob(blob, self.settings.blob_dir)
            log.info("voice %s: %s", result.voice_id, result.status)
        else:
            await self._with_database(lambda session: repository.store_job_failure(session, result))
            if result.job_kind == "kws.enroll":
                blobs = await self._with_database(
                    lambda session: repository.mark_voice_failed(session, result)
                )
                for blob in blobs:
                    delete_blob(blob, self.settings.blob_dir)
            if result.job_kind == "kws.scan" and SHA256_HEX.fullmatch(result.key[:64]):
                await self._track_settled(result.key[:64])
            if result.job_kind == "cry.classify" and not await self._publish_failure_reply(result):
                await safely(message.nack(requeue=True), "nack")
                return
        observe_stored(result, time.perf_counter() - started)
        await safely(message.ack(), "ack")

    async def _track_settled(self, track_id: str) -> None:
        """A scan of the track has its final answer: wake its long-polls, and delete its audio unless
        another scan of the same audio (with another voice or model version) still needs it."""
        self.signals.notify(track_id)
        await self._with_database(
            lambda session: repository.delete_blob_unless_pending(
                session, track_id, lambda: delete_blob(track_id, self.settings.blob_dir)
            )
        )

    async def _store_cry_result(self, result: CryResult) -> bool:
        """Write the prediction and get its Reply confirmed once; False if the Reply was not confirmed."""
        new = await self._with_database(lambda session: repository.store_cry_result(session, result))

        async def publish(stored: CryResult) -> None:
            reply, reply_id = Reply(result=stored), f"reply:{stored.request_id}"
            await self.publisher.publish(reply, REPLIES_EXCHANGE, REPLY_KEY, message_id=reply_id)

        try:
            published = await self._with_database(
                lambda session: repository.publish_reply_once(session, result.request_id, publish)
            )
        except Exception as error:
            log.warning("cry %s: reply not confirmed (%r); the result is requeued", result.request_id, error)
            return False
        outcome = "reply published" if published else "reply already published"
        log.info("cry %s: %s, %s", result.request_id, "stored" if new else "duplicate", outcome)
        return True

    async def _publish_failure_reply(self, failure: JobFailed) -> bool:
        """Tell the parent their recording failed, once; False if the FailedReply was not confirmed."""

        async def publish(request: CryRequest) -> None:
            reply = FailedReply(
                request_id=request.request_id,
                chat_id=request.chat_id,
                message_id=request.message_id,
                language=request.language,
                error_code=failure.error_code,
            )
            await self.publisher.publish(
                reply, REPLIES_EXCHANGE, REPLY_KEY, message_id=f"failed-reply:{request.request_id}"
            )

        try:
            await self._with_database(
                lambda session: repository.publish_failure_reply_once(session, failure.key, publish)
            )
        except Exception as error:
            log.warning("cry %s: failure reply not confirmed (%r); requeued", failure.key, error)
            return False
        return True

    async def _reject_poison(
        self, message: AbstractIncomingMessage, error_code: str, error: Exception
    ) -> None:
        """A result no retry can store goes to the dead-letter queue, with an errors row saying why."""
        key = message.message_id or "unknown"

        async def record(session: AsyncSession) -> bool:
            return await repository.record_error(
                session,
                job_kind="store.results",
                key=key,
                error_code=error_code,
                error_message=str(error)[:2000],
                attempts=1,
            )

        await self._with_database(record)
        log.error("store.results: poison message %s dead-lettered: %s", message.message_id, error)
        await safely(message.reject(requeue=False), "reject")

    async def _with_database(self, operation: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``operation`` in a fresh session; retry with backoff while the database is unreachable."""
        delay = self.settings.db_retry_initial_s
        while True:
            try:
                async with self.sessions() as session:
                    outcome = await operation(session)
            except Exception as error:
                if not is_database_unavailable(error):
                    raise
                if self.health.reachable:
                    log.warning("database unreachable (%s); results wait in the queue", error)
                self.health.failed(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.db_retry_max_s)
                continue
            if not self.health.reachable:
                log.info("database reachable again")
            self.health.succeeded()
            return outcome
