"""The AMQP machinery against the real RabbitMQ: topology, confirms, and what quorum queues must do."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import pytest
from aio_pika.exceptions import DeliveryError

from services.common.amqp import declare_topology
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    DEAD_LETTER_RETENTION_MS,
    DELIVERY_LIMIT,
    JOBS_EXCHANGE,
    QUEUES,
    RETRY_EXCHANGE,
    dead_letter_queue,
    retry_queue,
)
from tests.services.harness import MANAGEMENT_API, MANAGEMENT_AUTH, BrokerProbe, eventually
from tests.services.messages import cry_result


async def test_the_topology_declares_twice_and_every_work_queue_is_a_limited_quorum_queue(
    broker: BrokerProbe,
) -> None:
    channel = await broker.connection.channel()
    await declare_topology(channel)  # a second time: idempotent
    await channel.close()

    async with httpx.AsyncClient(base_url=MANAGEMENT_API, auth=MANAGEMENT_AUTH, timeout=10) as api:
        response = await api.get(f"/queues/{quote(broker.vhost, safe='')}")
    declared = {queue["name"]: queue for queue in response.json()}
    assert set(declared) == {queue.name for queue in QUEUES}
    work = declared[CRY_CLASSIFY_QUEUE]
    assert work["type"] == "quorum"
    assert work["arguments"]["x-delivery-limit"] == DELIVERY_LIMIT
    assert work["arguments"]["x-dead-letter-routing-key"] == dead_letter_queue(CRY_CLASSIFY_QUEUE)
    # Dead-lettered voice notes are dropped after the retention period, not kept for ever.
    dead = declared[dead_letter_queue(CRY_CLASSIFY_QUEUE)]
    assert dead["arguments"]["x-message-ttl"] == DEAD_LETTER_RETENTION_MS


async def test_an_unroutable_publish_raises_instead_of_vanishing(broker: BrokerProbe) -> None:
    with pytest.raises(DeliveryError):
        await broker.publish(cry_result(), JOBS_EXCHANGE, "no.such.queue", message_id="unroutable")


async def test_a_retry_waits_its_expiration_then_returns_to_the_work_queue(broker: BrokerProbe) -> None:
    """Quorum queues honour per-message TTL only since RabbitMQ 3.10: the retry design depends on it."""
    sent = time.monotonic()
    await broker.publisher.publish_body(
        b"{}", RETRY_EXCHANGE, retry_queue(CRY_CLASSIFY_QUEUE), message_id="retry-1", expiration_s=1.0
    )

    async def back_in_the_work_queue() -> bool:
        return (await broker.ready_and_consumers(CRY_CLASSIFY_QUEUE))[0] == 1

    await eventually(back_in_the_work_queue, 10, "the expired retry in cry.classify")
    assert time.monotonic() - sent >= 0.9


async def test_a_message_returned_more_often_than_the_limit_is_dead_lettered(broker: BrokerProbe) -> None:
    await broker.publish_raw(b"{}", JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, "crashes-everyone")
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(CRY_CLASSIFY_QUEUE, passive=True)
    for _ in range(DELIVERY_LIMIT + 1):
        message = await queue.get(timeout=10)
        await message.nack(requeue=True)
    await channel.close()

    async def dead_lettered() -> bool:
        return (await broker.ready_and_consumers(dead_letter_queue(CRY_CLASSIFY_QUEUE)))[0] == 1

    await eventually(dead_lettered, 10, "the message in cry.classify.dlq")
    assert (await broker.ready_and_consumers(CRY_CLASSIFY_QUEUE))[0] == 0
