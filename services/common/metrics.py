"""Prometheus metrics of every Earshot service; every name starts with ``earshot_``.

The gateway and the store serve them at ``/metrics`` on their HTTP port (``instrument_app``); the workers have
no HTTP server and serve prometheus-client's own on ``EARSHOT_METRICS_PORT`` (``serve_worker_metrics``).
Per-queue depths, rates and consumer counts come from RabbitMQ's own Prometheus endpoint, not from here.

Job metrics, labelled by ``kind`` (``cry.classify``, ``kws.scan``):

- ``earshot_jobs_received_total``; ``earshot_jobs_processed_total{status}`` (the answer's status, e.g.
  ``ok``, ``bad_audio``, ``done``, ``rejected``); ``earshot_jobs_failed_total{reason}`` (``retried``,
  ``failed``, ``invalid_message``, ``redelivered_too_often``, ``result_not_confirmed``).
- ``earshot_job_stage_seconds{stage}``: ``decode``, ``features``, ``inference``, timed inside the models by
  ``stage``; ``earshot_job_processing_seconds``: the whole model call.
- ``earshot_job_queue_wait_seconds``: from the gateway receiving the job to a worker starting it (so it
  includes retry back-off); ``earshot_job_end_to_end_seconds``: from receipt to the stored result.
- ``earshot_result_write_seconds{contract}``: the store's PostgreSQL write of one result.
- ``earshot_model_info{kind, version}``: the model each worker loaded.

HTTP metrics, labelled by ``service``, ``method``, ``route`` (the route's template, so track ids do not
explode the label set) and ``status``: ``earshot_http_requests_total`` and
``earshot_http_request_duration_seconds``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Histogram,
    Info,
    generate_latest,
    start_http_server,
)

from services.common.contracts import utc_now
from services.common.logs import bind_ids

# Seconds: from a few ms (a short kws scan) to minutes (a backlog, a retry back-off).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGES = ("decode", "features", "inference")

JOBS_RECEIVED = Counter("earshot_jobs_received", "Job deliveries a worker took from its queue.", ["kind"])
JOBS_PROCESSED = Counter(
    "earshot_jobs_processed", "Jobs answered and published, by the answer's status.", ["kind", "status"]
)
JOBS_FAILED = Counter(
    "earshot_jobs_failed", "Job deliveries that did not produce an answer, by reason.", ["kind", "reason"]
)
JOB_STAGE_SECONDS = Histogram(
    "earshot_job_stage_seconds", "Time in each step of a model call.", ["kind", "stage"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
JOB_PROCESSING_SECONDS = Histogram(
    "earshot_job_processing_seconds", "Time of the whole model call of one job.", ["kind"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
JOB_QUEUE_WAIT_SECONDS = Histogram(
    "earshot_job_queue_wait_seconds", "From the gateway receiving a job to a worker starting it.", ["kind"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
JOB_END_TO_END_SECONDS = Histogram(
    "earshot_job_end_to_end_seconds", "From the gateway receiving a job to its result being stored.",
    ["kind"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
RESULT_WRITE_SECONDS = Histogram(
    "earshot_result_write_seconds", "The store's database write of one result message.", ["contract"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
MODEL_INFO = Info("earshot_model", "The model a worker loaded.", ["kind"])
HTTP_REQUESTS = Counter(
    "earshot_http_requests", "HTTP requests answered.", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "earshot_http_request_duration_seconds", "Time to answer an HTTP request (a long-poll included).",
    ["service", "method", "route"], buckets=HTTP_BUCKETS,
)  # fmt: skip

_JOB_KIND: ContextVar[str | None] = ContextVar("job_kind", default=None)
_TRACK_ID_IN_PATH = re.compile(r"/([0-9a-f]{64})(?:/|$)")
REQUEST_ID_HEADER = "x-request-id"


def seconds_since(moment: datetime) -> float:
    """Seconds from ``moment`` (timezone-aware) until now; never negative, whatever the clocks say."""
    return max(0.0, (utc_now() - moment).total_seconds())


def bind_job_kind(kind: str) -> None:
    """Make ``stage`` timings in the current context count for ``kind`` (a worker sets it per delivery)."""
    _JOB_KIND.set(kind)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one step of a model call; outside a worker's job (CLI, evaluation) it records nothing."""
    kind = _JOB_KIND.get()
    started = time.perf_counter()
    try:
        yield
    finally:
        if kind is not None:
            JOB_STAGE_SECONDS.labels(kind, name).observe(time.perf_counter() - started)


def record_model(kind: str, version: str | None) -> None:
    MODEL_INFO.labels(kind).info({"version": version or "unknown"})


def serve_worker_metrics(port: int, host: str) -> None:
    """prometheus-client's own HTTP server in a daemon thread (a worker has no HTTP app)."""
    start_http_server(port, addr=host)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HttpObservability:
    """ASGI middleware: HTTP metrics, and the request's ids bound for its log lines.

    The request id is the client's ``X-Request-ID`` when it sends one, else a new one; it is echoed back in
    the answer's ``X-Request-ID``. A track id in the path is bound too.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(REQUEST_ID_HEADER.encode(), b"").decode(errors="replace")[:200]
        request_id = request_id or uuid.uuid4().hex
        track = _TRACK_ID_IN_PATH.search(scope.get("path", ""))
        bind_ids(request_id=request_id, track_id=track.group(1) if track else None)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_SECONDS.labels(self.service, method, template).observe(time.perf_counter() - started)


def instrument_app(app: Any, service: str) -> None:
    """Add HTTP metrics, request ids and a ``/metrics`` route to a FastAPI app."""
    from starlette.requests import Request
    from starlette.responses import Response

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, include_in_schema=False)
    app.add_middleware(HttpObservability, service=service)
