"""The whole AMQP topology in one place: exchanges, queues, their arguments and bindings.

Every service declares it idempotently at start (``services.common.amqp.declare_topology``), and
``deploy/rabbitmq/definitions.json`` mirrors it (a test holds the two equal).

Flow: the gateway publishes jobs to ``earshot.jobs``; workers consume ``cry.classify`` / ``kws.scan`` /
``kws.enroll`` and
publish results to ``earshot.results``; the store consumes ``store.results``, writes PostgreSQL, and publishes
replies for the bot to ``earshot.replies``, which the gateway consumes from ``gateway.replies``.
Every work queue is a quorum queue with a delivery limit and a dead-letter exchange into ``<queue>.dlq``;
transient failures wait in ``<queue>.retry`` (per-message TTL) and dead-letter back into the work queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

JOBS_EXCHANGE = "earshot.jobs"
RESULTS_EXCHANGE = "earshot.results"
REPLIES_EXCHANGE = "earshot.replies"
DEAD_LETTER_EXCHANGE = "earshot.dlx"
RETRY_EXCHANGE = "earshot.retry"

CRY_CLASSIFY_QUEUE = "cry.classify"
KWS_SCAN_QUEUE = "kws.scan"
KWS_ENROLL_QUEUE = "kws.enroll"
STORE_RESULTS_QUEUE = "store.results"
GATEWAY_REPLIES_QUEUE = "gateway.replies"

# Routing keys on RESULTS_EXCHANGE and REPLIES_EXCHANGE.
CRY_RESULT_KEY = "cry.result"
KWS_RESULT_KEY = "kws.result"
KWS_ENROLL_RESULT_KEY = "kws.enroll.result"
JOB_FAILED_KEY = "job.failed"
REPLY_KEY = "reply"

DELIVERY_LIMIT = 5
# Dead-lettered jobs may hold a parent's voice note: they wait a week for an operator to fix and replay them,
# then the broker drops them, so no user audio is kept longer without consent.
DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600 * 1000

# Quorum queues dead-letter at most once by default: a message could vanish between a work queue and its
# ``.dlq`` or between a ``.retry`` queue and its work queue. At-least-once dead-lettering (RabbitMQ >= 3.10)
# closes that gap and requires the ``reject-publish`` overflow mode.
AT_LEAST_ONCE_DEAD_LETTERING: dict[str, object] = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "direct"


@dataclass(frozen=True)
class Queue:
    """A durable quorum queue; ``routing_keys`` bind it to ``exchange``."""

    name: str
    exchange: str
    routing_keys: tuple[str, ...]
    arguments: dict[str, object] = field(default_factory=dict)


def retry_queue(queue_name: str) -> str:
    """The retry queue's name, also its routing key on ``RETRY_EXCHANGE``."""
    return f"{queue_name}.retry"


def dead_letter_queue(queue_name: str) -> str:
    """The dead-letter queue's name, also its routing key on ``DEAD_LETTER_EXCHANGE``."""
    return f"{queue_name}.dlq"


def work_queue(name: str, exchange: str, routing_keys: tuple[str, ...]) -> list[Queue]:
    """A work queue with its dead-letter queue and its retry queue.

    A message published to ``RETRY_EXCHANGE`` with routing key ``<name>.retry`` and a per-message expiration
    (quorum queues honour it since RabbitMQ 3.10) waits there, then dead-letters back into the work queue.
    """
    return [
        Queue(
            name=name,
            exchange=exchange,
            routing_keys=routing_keys,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": dead_letter_queue(name),
                **AT_LEAST_ONCE_DEAD_LETTERING,
            },
        ),
        Queue(
            name=dead_letter_queue(name),
            exchange=DEAD_LETTER_EXCHANGE,
            routing_keys=(dead_letter_queue(name),),
            arguments={"x-queue-type": "quorum", "x-message-ttl": DEAD_LETTER_RETENTION_MS},
        ),
        Queue(
            name=retry_queue(name),
            exchange=RETRY_EXCHANGE,
            routing_keys=(retry_queue(name),),
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": exchange,
                "x-dead-letter-routing-key": routing_keys[0],
                **AT_LEAST_ONCE_DEAD_LETTERING,
            },
        ),
    ]


EXCHANGES: tuple[Exchange, ...] = (
    Exchange(JOBS_EXCHANGE),
    Exchange(RESULTS_EXCHANGE),
    Exchange(REPLIES_EXCHANGE),
    Exchange(DEAD_LETTER_EXCHANGE),
    Exchange(RETRY_EXCHANGE),
)

QUEUES: tuple[Queue, ...] = (
    *work_queue(CRY_CLASSIFY_QUEUE, JOBS_EXCHANGE, (CRY_CLASSIFY_QUEUE,)),
    *work_queue(KWS_SCAN_QUEUE, JOBS_EXCHANGE, (KWS_SCAN_QUEUE,)),
    *work_queue(KWS_ENROLL_QUEUE, JOBS_EXCHANGE, (KWS_ENROLL_QUEUE,)),
    *work_queue(
        STORE_RESULTS_QUEUE,
        RESULTS_EXCHANGE,
        (CRY_RESULT_KEY, KWS_RESULT_KEY, KWS_ENROLL_RESULT_KEY, JOB_FAILED_KEY),
    ),
    *work_queue(GATEWAY_REPLIES_QUEUE, REPLIES_EXCHANGE, (REPLY_KEY,)),
)
