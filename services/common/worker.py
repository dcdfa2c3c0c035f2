"""The generic worker loop: consume a job queue, run a model off the event loop, publish the result, then ack.

Each delivery ends in exactly one of these ways:

- **done**: the model's result is published to ``earshot.results`` and confirmed by the broker, then the job
  is acked. A crash before the ack leaves the job unacked, so the broker hands it out again; the store's
  unique keys make the second result a no-op.
- **retry**: the model raised (a transient fault). The job's exact body is republished to ``<queue>.retry``
  with an expiration that grows with each attempt and an ``x-earshot-attempt`` header; when it expires the
  retry queue dead-letters it back into the work queue. The original delivery is acked once the copy is
  confirmed.
- **given up**: the last attempt failed, the body is not a valid job (poison), or the job has been handed out
  so often that it probably crashes the worker. A ``JobFailed`` is published (the store leaves an errors row),
  then the delivery is rejected without requeue, which dead-letters it into ``<queue>.dlq``.

Bad audio is not a failure: the model turns it into a normal result (classifier: status ``bad_audio``; kws:
status ``rejected``), so the user gets a clear answer.

The model runs in a thread pool, so heartbeats, acks and publishes never wait for inference.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from services.common.amqp import (
    Consumer,
    Publisher,
    connect,
    delivery_count,
    int_header,
    safely,
    shutdown_event,
)
from services.common.blobs import BlobSettings, read_blob
from services.common.contracts import (
    AudioPayload,
    Contract,
    CryJob,
    JobFailed,
    JobKind,
    KwsEnrollJob,
    KwsJob,
)
from services.common.logs import configure_logging
from services.common.metrics import (
    JOB_PROCESSING_SECONDS,
    JOB_QUEUE_WAIT_SECONDS,
    JOBS_FAILED,
    JOBS_PROCESSED,
    JOBS_RECEIVED,
    bind_job_kind,
    record_model,
    seconds_since,
    serve_worker_metrics,
)
from services.common.settings import BrokerSettings
from services.common.topology import (
    DELIVERY_LIMIT,
    JOB_FAILED_KEY,
    RESULTS_EXCHANGE,
    RETRY_EXCHANGE,
    retry_queue,
)

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-earshot-attempt"

JobT = TypeVar("JobT", CryJob, KwsJob, KwsEnrollJob)


class WorkerSettings(BrokerSettings, BlobSettings):
    """How a worker retries and how many jobs it runs through the model at once."""

    max_attempts: int = 3
    # Backoff before attempt n+1 is retry_delay_s * 4**(n-1), capped at retry_delay_max_s.
    retry_delay_s: float = 2.0
    retry_delay_max_s: float = 120.0
    model_threads: int = 1
    # prometheus-client's HTTP server for this worker's /metrics; unset means no metrics server.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class JobSpec(Generic[JobT]):
    """What makes a worker a classifier or a kws worker: its queue, its job type and its model call.

    ``process`` is blocking and runs in a thread; it returns the result contract to publish with
    ``result_routing_key``. ``key`` names a job in logs and in the errors table. ``model_version`` is
    exported as the ``earshot_model_info`` metric.
    """

    kind: JobKind
    queue: str
    job_type: type[JobT]
    result_routing_key: str
    process: Callable[[JobT], Contract]
    key: Callable[[JobT], str]
    model_version: str | None = None


def retry_delay_s(attempt: int, settings: WorkerSettings) -> float:
    """How long a job waits in the retry queue after failing ``attempt`` (1-based)."""
    return min(settings.retry_delay_s * 4 ** (attempt - 1), settings.retry_delay_max_s)


def job_audio(payload: AudioPayload, settings: BlobSettings) -> bytes:
    """The job's audio bytes: inline when small, else from the content-addressed blob directory."""
    if payload.inline is not None:
        return payload.inline
    if payload.blob_sha256 is None:
        raise ValueError("the job carries neither inline audio nor a blob reference")
    return read_blob(payload.blob_sha256, settings.blob_dir)


class JobWorker(Generic[JobT]):
    """Handles one delivery at a time per task; see the module docstring for the three outcomes."""

    def __init__(
        self,
        spec: JobSpec[JobT],
        settings: WorkerSettings,
        publisher: Publisher,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.publisher = publisher
        self.executor = executor

    async def handle(self, message: AbstractIncomingMessage) -> None:
        bind_job_kind(self.spec.kind)
        JOBS_RECEIVED.labels(self.spec.kind).inc()
        attempt = int_header(message, ATTEMPT_HEADER, 1)
        try:
            job = self.spec.job_type.model_validate_json(message.body)
        except ValidationError as error:
            await self._give_up(message, poison_key(message), "invalid_message", _short(error), attempt)
            return
        key = self.spec.key(job)
        if delivery_count(message) >= DELIVERY_LIMIT:
            reason = (
                f"handed out {delivery_count(message) + 1} times without an answer; the job may crash workers"
            )
            await self._give_up(message, key, "redelivered_too_often", reason, attempt)
            return
        JOB_QUEUE_WAIT_SECONDS.labels(self.spec.kind).observe(seconds_since(job.received_at))
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            # In a copy of this context, so the model's stage timings and log lines know the job.
            process = partial(copy_context().run, self.spec.process, job)
            result = await loop.run_in_executor(self.executor, process)
        except Exception as error:
            log.warning("%s %s attempt %d failed: %r", self.spec.kind, key, attempt, error)
            if attempt >= self.settings.max_attempts:
                await self._give_up(message, key, "failed", f"{type(error).__name__}: {error}", attempt)
            else:
                await self._retry(message, key, attempt)
            return
        JOB_PROCESSING_SECONDS.labels(self.spec.kind).observe(time.perf_counter() - started)
        try:
            await self.publisher.publish(
                result, RESULTS_EXCHANGE, self.spec.result_routing_key, message_id=key
            )
        except Exception as error:
            # Not confirmed: the job stays ours only until the nack; the broker hands it out again.
            log.warning("%s %s: result not confirmed (%r); requeueing the job", self.spec.kind, key, error)
            JOBS_FAILED.labels(self.spec.kind, "result_not_confirmed").inc()
            await safely(message.nack(requeue=True), "nack")
            return
        await safely(message.ack(), "ack")
        JOBS_PROCESSED.labels(self.spec.kind, str(getattr(result, "status", "done"))).inc()
        log.info("%s %s done", self.spec.kind, key)

    async def _retry(self, message: AbstractIncomingMessage, key: str, attempt: int) -> None:
        delay = retry_delay_s(attempt, self.settings)
        try:
            await self.publisher.publish_body(
                message.body,
                RETRY_EXCHANGE,
                retry_queue(self.spec.queue),
                message_id=key,
                headers={ATTEMPT_HEADER: attempt + 1},
                expiration_s=delay,
            )
        except Exception as error:
            log.warning("%s %s: retry copy not confirmed (%r); requeueing", self.spec.kind, key, error)
            await safely(message.nack(requeue=True), "nack")
            return
        await safely(message.ack(), "ack")
        JOBS_FAILED.labels(self.spec.kind, "retried").inc()
        log.info("%s %s: attempt %d in %.1f s", self.spec.kind, key, attempt + 1, delay)

    async def _give_up(
        self, message: AbstractIncomingMessage, key: str, code: str, reason: str, attempt: int
    ) -> None:
        failure = JobFailed(
            job_kind=self.spec.kind, key=key, error_code=code, error_message=reason, attempts=attempt
        )
        try:
            await self.publisher.publish(
                failure, RESULTS_EXCHANGE, JOB_FAILED_KEY, message_id=f"failed:{key}"
            )
        except Exception as error:
            log.warning("%s %s: failure report not confirmed (%r); requeueing", self.spec.kind, key, error)
            await safely(message.nack(requeue=True), "nack")
            return
        await safely(message.reject(requeue=False), "reject")
        JOBS_FAILED.labels(self.spec.kind, code).inc()
        log.error("%s %s given up (%s): %s", self.spec.kind, key, code, reason)


def poison_key(message: AbstractIncomingMessage) -> str:
    """A key for a body that is not a valid job: its message id, else a hash of the body."""
    return message.message_id or "sha256:" + hashlib.sha256(message.body).hexdigest()


def _short(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()[:5])


async def serve(specs: Sequence[JobSpec], settings: WorkerSettings) -> None:
    """Consume every spec's queue until SIGTERM/SIGINT, then stop consuming, finish the jobs in flight and
    close. The specs share one connection, one publisher and the model threads."""
    stop = shutdown_event()
    for spec in specs:
        record_model(spec.kind, spec.model_version)
    if settings.metrics_port is None:
        log.info("metrics server off (set EARSHOT_METRICS_PORT to serve /metrics)")
    else:
        serve_worker_metrics(settings.metrics_port, settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    kinds = "+".join(spec.kind for spec in specs)
    connection = await connect(settings, name=f"earshot-worker-{kinds}-{os.getpid()}")
    publisher = await Publisher.open(connection)
    with ThreadPoolExecutor(max_workers=settings.model_threads, thread_name_prefix=kinds) as executor:
        consumers = []
        for spec in specs:
            worker = JobWorker(spec, settings, publisher, executor)
            consumers.append(await Consumer.start(connection, spec.queue, worker.handle, settings.prefetch))
        await stop.wait()
        in_flight = sum(consumer.in_flight for consumer in consumers)
        log.info("shutting down: no new jobs, finishing %d in flight", in_flight)
        for consumer in consumers:
            await consumer.stop()
    await publisher.close()
    await connection.close()
    log.info("stopped")


def run_worker(
    load_specs: Callable[[WorkerSettings], JobSpec | Sequence[JobSpec]],
    settings: WorkerSettings | None = None,
) -> None:
    """Load the model first (a worker that cannot load it never takes a job), then serve until signalled."""
    configure_logging()
    settings = settings or WorkerSettings()
    specs = load_specs(settings)
    asyncio.run(serve([specs] if isinstance(specs, JobSpec) else list(specs), settings))
