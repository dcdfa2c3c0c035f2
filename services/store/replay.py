"""``python -m services.store replay-dlq QUEUE``: after a fix, move ``QUEUE.dlq``'s messages to ``QUEUE``.

Messages are taken from the dead-letter queue unacknowledged, in batches of ``BATCH``, republished to the work
queue through the default exchange (so each reaches exactly that queue, whatever else is bound to its old
routing key) with publisher confirms, and acked from the dead-letter queue only once the broker has confirmed
the copy. An interruption therefore never loses a message: at worst the batch in hand is in both queues, and
the copies are duplicates that the store's unique keys absorb. Only the messages waiting when the replay
starts are moved, so a job that fails again and returns to the dead-letter queue is not replayed in a loop.

The copy keeps its body and message id but not its death history: the broker's ``x-death`` headers and the
worker's attempt counter are dropped, so the job gets its full set of retries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from services.common.amqp import Publisher, connect, shutdown_event
from services.common.settings import BrokerSettings
from services.common.topology import QUEUES, dead_letter_queue
from services.common.worker import ATTEMPT_HEADER, poison_key

DEFAULT_EXCHANGE = ""
# Messages republished at once; an interruption can leave at most this many in both queues.
BATCH = 50
# Headers describing the message's past life that must not follow it back into the work queue.
DROPPED_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
        ATTEMPT_HEADER,
    }
)


@dataclass(frozen=True)
class ReplaySummary:
    queue: str
    moved: int
    left: int


def replayable_queues() -> list[str]:
    """The work queues, i.e. the queues that have a dead-letter queue."""
    names = {queue.name for queue in QUEUES}
    return [queue.name for queue in QUEUES if dead_letter_queue(queue.name) in names]


def replay_headers(message: AbstractIncomingMessage) -> dict[str, int | str]:
    """The message's own headers, without its death history."""
    return {
        name: value
        for name, value in (message.headers or {}).items()
        if name not in DROPPED_HEADERS and isinstance(value, int | str)
    }


async def take(dead_letters: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    """Up to ``count`` messages, unacknowledged: they return to the queue if this process dies."""
    batch = []
    while len(batch) < count and (message := await dead_letters.get(no_ack=False, fail=False)) is not None:
        batch.append(message)
    return batch


async def settle_acks(dead_letters: AbstractQueue) -> None:
    """Return only once the broker has applied this channel's acks.

    A quorum queue applies a channel's acks asynchronously, and when the channel closes it hands back what the
    channel still holds, which can overtake the last acks (those messages would be replayed twice). A
    ``basic.get`` is applied after the channel's earlier acks, so once it answers they are all settled; a
    message it takes is handed back untouched.
    """
    barrier = await dead_letters.get(no_ack=False, fail=False)
    if barrier is not None:
        await barrier.nack(requeue=True)


async def republish(publisher: Publisher, message: AbstractIncomingMessage, queue: str) -> None:
    await publisher.publish_body(
        message.body, DEFAULT_EXCHANGE, queue, message_id=poison_key(message), headers=replay_headers(message)
    )


def death_reason(message: AbstractIncomingMessage) -> str:
    headers = message.headers or {}
    reason = headers.get("x-first-death-reason") or headers.get("x-last-death-reason")
    return str(reason.decode() if isinstance(reason, bytes) else reason or "unknown reason")


async def replay_dead_letters(
    settings: BrokerSettings,
    queue: str,
    report: Callable[[str], None],
    limit: int | None = None,
) -> ReplaySummary:
    """Move up to ``limit`` (default: all now waiting) messages of ``queue``'s dead-letter queue back."""
    if queue not in replayable_queues():
        raise ValueError(f"{queue!r} is not a work queue; choose one of: {', '.join(replayable_queues())}")
    stop = shutdown_event()
    connection = await connect(settings, name="earshot-replay-dlq")
    try:
        publisher = await Publisher.open(connection)
        channel = await connection.channel()
        dead_letters = await channel.declare_queue(dead_letter_queue(queue), passive=True)
        waiting = dead_letters.declaration_result.message_count or 0
        todo = waiting if limit is None else min(waiting, limit)
        moved = 0
        while moved < todo and not stop.is_set():
            batch = await take(dead_letters, min(BATCH, todo - moved))
            if not batch:
                break
            # The batch's publishes wait for their confirms together (the broker syncs them to disk at
            # once); each message is acked only after its own copy is confirmed.
            await asyncio.gather(*(republish(publisher, message, queue) for message in batch))
            for message in batch:
                await message.ack()
                moved += 1
                reason = death_reason(message)
                report(f"moved {poison_key(message)} ({reason}) {dead_letters.name} -> {queue}")
        await settle_acks(dead_letters)
        await channel.close()
        async with connection.channel() as counting:
            left = await counting.declare_queue(dead_letter_queue(queue), passive=True)
        await publisher.close()
        return ReplaySummary(queue, moved, left.declaration_result.message_count or 0)
    finally:
        await connection.close()


def run_replay(queue: str, limit: int | None) -> int:
    """The CLI: print each message moved, then a summary; exit code 0, or 2 for an unknown queue."""
    try:
        summary = asyncio.run(replay_dead_letters(BrokerSettings(), queue, print_now, limit))
    except ValueError as error:
        print(error)
        return 2
    dlq = dead_letter_queue(queue)
    print(f"moved {summary.moved} message(s) from {dlq} back to {queue}; {summary.left} left in {dlq}")
    return 0


def print_now(line: str) -> None:
    print(line, flush=True)
