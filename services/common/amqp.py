"""The RabbitMQ machinery every service shares: connection, topology, confirmed publishing, consuming.

- ``connect`` opens a robust connection: after a dropped connection aio-pika reconnects and restores the
  channels, queues and consumers declared through it.
- ``declare_topology`` declares every exchange, queue and binding of ``services.common.topology``; it is
  idempotent, so each service calls it at start.
- ``Publisher`` publishes persistent messages on a channel with publisher confirms and ``mandatory`` set:
  ``publish`` returns only once the broker has taken responsibility for the message, and raises otherwise.
- ``Consumer`` consumes one queue with bounded prefetch and manual acknowledgement, and remembers the
  deliveries being handled so a graceful shutdown can stop consuming and wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
)

from services.common.contracts import Contract
from services.common.logs import bind_ids_from_key
from services.common.settings import BrokerSettings
from services.common.topology import EXCHANGES, QUEUES, Queue

log = logging.getLogger(__name__)

# How long a robust connection waits between reconnection attempts after losing the broker.
RECONNECT_INTERVAL_S = 2.0
# How long a publish waits for the broker's confirm before it counts as failed.
PUBLISH_TIMEOUT_S = 30.0

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def connect(
    settings: BrokerSettings | None = None, name: str | None = None
) -> AbstractRobustConnection:
    """A connection that reconnects by itself; ``name`` shows in the management UI (default program-pid)."""
    settings = settings or BrokerSettings()
    connection_name = name or f"earshot-{os.path.basename(sys.argv[0] or 'python')}-{os.getpid()}"
    return await aio_pika.connect_robust(
        settings.amqp_url,
        client_properties={"connection_name": connection_name},
        reconnect_interval=RECONNECT_INTERVAL_S,
    )


async def declare_topology(channel: AbstractChannel) -> None:
    """Declare every exchange and queue of the topology and bind them; safe to repeat."""
    for exchange in EXCHANGES:
        await channel.declare_exchange(exchange.name, exchange.type, durable=True)
    for queue in QUEUES:
        await declare_queue(channel, queue)


async def declare_queue(channel: AbstractChannel, queue: Queue) -> AbstractQueue:
    """Declare one topology queue with its arguments and bindings."""
    declared = await channel.declare_queue(queue.name, durable=True, arguments=dict(queue.arguments))
    for routing_key in queue.routing_keys:
        await declared.bind(queue.exchange, routing_key)
    return declared


def topology_queue(name: str) -> Queue:
    """The topology's description of the queue called ``name``."""
    for queue in QUEUES:
        if queue.name == name:
            return queue
    raise KeyError(f"no queue {name!r} in services.common.topology")


class Publisher:
    """Publishes contracts persistently and waits for the broker's confirm on each one."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> Publisher:
        # on_return_raises: an unroutable message (mandatory) raises instead of being confirmed and lost.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel)

    async def publish(
        self,
        message: Contract,
        exchange: str,
        routing_key: str,
        *,
        message_id: str,
        headers: dict[str, int | str] | None = None,
        expiration_s: float | None = None,
    ) -> None:
        """Publish ``message``; returns once confirmed; raises on nack, return, timeout, closed channel."""
        await self.publish_body(
            message.to_body(),
            exchange,
            routing_key,
            message_id=message_id,
            headers=headers,
            expiration_s=expiration_s,
        )

    async def publish_body(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        *,
        message_id: str,
        headers: dict[str, int | str] | None = None,
        expiration_s: float | None = None,
    ) -> None:
        """Publish raw bytes (a job being retried keeps its exact body, even one that failed validation)."""
        target = await self._exchange(exchange)
        amqp_message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id,
            headers=headers or {},
            expiration=expiration_s,
        )
        await target.publish(amqp_message, routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_S)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._channel.close()

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]


class Consumer:
    """Consumes one queue with manual acks; ``handler`` decides ack, reject or retry for each delivery.

    Every delivery runs in its own task; ``prefetch`` bounds how many are in flight. ``stop`` cancels the
    consumer (no new deliveries) and waits for the tasks in flight, so no job is half done at shutdown.
    """

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, handler: MessageHandler) -> None:
        self._channel = channel
        self._queue = queue
        self._handler = handler
        self._in_flight: set[asyncio.Task[None]] = set()
        self._consumer_tag: str | None = None

    @classmethod
    async def start(
        cls, connection: AbstractRobustConnection, queue_name: str, handler: MessageHandler, prefetch: int
    ) -> Consumer:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        await declare_topology(channel)
        queue = await declare_queue(channel, topology_queue(queue_name))
        consumer = cls(channel, queue, handler)
        consumer._consumer_tag = await queue.consume(consumer._on_message)
        log.info("consuming %s with prefetch %d", queue_name, prefetch)
        return consumer

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(message))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        bind_ids_from_key(message.message_id)  # this task's log lines name the request or track
        try:
            await self._handler(message)
        except Exception:
            # A handler bug must not kill the consumer; the delivery stays unacked and returns to the
            # queue when the channel closes, and the quorum queue's delivery limit stops endless loops.
            log.exception("unhandled error for message %s on %s", message.message_id, self._queue.name)
            await safely(message.nack(requeue=True), "nack")

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking deliveries, then wait for the deliveries being handled.

        With ``grace_s``, handlers still running after that long are cancelled: their deliveries stay
        unacked and the broker hands them out again once the channel closes.
        """
        if self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._in_flight:
            log.info("waiting for %d delivery(ies) in flight on %s", len(self._in_flight), self._queue.name)
            _, still_running = await asyncio.wait(set(self._in_flight), timeout=grace_s)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        with contextlib.suppress(Exception):
            await self._channel.close()


async def safely(operation: Awaitable[object], what: str) -> bool:
    """Await an ack/nack/reject that may fail because the channel died meanwhile.

    When the channel is gone the broker has already put the delivery back in the queue, so there is
    nothing left to do but note it: the message is delivered again and the consumer is idempotent.
    """
    try:
        await operation
    except Exception as error:  # aio-pika raises several types for a closed channel
        log.warning(
            "could not %s a delivery (%s: %s); the broker redelivers it", what, type(error).__name__, error
        )
        return False
    return True


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How many times a quorum queue has handed this message out before (0 on the first delivery)."""
    return int_header(message, "x-delivery-count", 0)


def int_header(message: AbstractIncomingMessage, name: str, default: int) -> int:
    value = (message.headers or {}).get(name, default)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def shutdown_event() -> asyncio.Event:
    """An event set on SIGTERM or SIGINT, so a service can shut down gracefully instead of dying."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
