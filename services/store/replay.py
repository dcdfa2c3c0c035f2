"""``python -m services.store replay-dlq QUEUE``: after a fix, move ``QUEUE.dlq``'s messages to ``QUEUE``.

Messages are taken from the dead-letter queue unacknowledged, in batches of ``BATCH``, republished to the work
queue through the default exchange (so each reaches exactly that queue, whatever else is bound to its old
routing key) with publisher confirms, and acked from the dead-letter queue only once the broker has confirmed
the copy. An interruption therefore never loses a message: at worst the batch in hand is in both queues, and
the copies are duplicates that the store's unique keys absorb. A job that fails again and returns to the
dead-letter queue during the replay ends it, so a replay never loops.

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
    dead_letters_empty: bool


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


async def take(
    dead_letters: AbstractQueue, count: int, moved_keys: set[str]
) -> tuple[list[AbstractIncomingMessage], bool]:
    """Up to ``count`` messages, unacknowledged (they return to the queue if this process dies), and whether a
    message this run already moved came back (it failed again): that one is handed back and ends the run."""
    batch: list[AbstractIncomingMessage] = []
    while len(batch) < count and (message := await dead_letters.get(no_ack=False, fail=False)) is not None:
        if poison_key(message) in moved_keys:
            await message.nack(requeue=True)
            return batch, True
        batch.append(message)
    return batch, False


async def is_empty_once_settled(dead_letters: AbstractQueue) -> bool:
    """Whether the queue is empty, answered only once the broker has applied this channel's acks.

    A quorum queue applies a channel's acks asynchronously, and when the channel closes it hands back what the
    channel still holds, which can overtake the last acks (those messages would be replayed twice). A
    ``basic.get`` is applied after the channel's earlier acks, so once it answers they are all settled; a
    message it takes is handed back untouched. (The message count of a queue declaration can lag; this does
    not.)
    """
    barrier = await dead_letters.get(no_ack=False, fail=False)
    if barrier is None:
        return True
    await barrier.nack(requeue=True)
    return False


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
    """Move up to ``limit`` (default: all) messages of ``queue``'s dead-letter queue back; a message this
    run already moved that comes back (it failed again) ends the run, so a replay never loops."""
    if queue not in replayable_queues():
        raise ValueError(f"{queue!r} is not a work queue; choose one of: {', '.join(replayable_queues())}")
    stop = shutdown_event()
    connection = await connect(settings, name="earshot-replay-dlq")
    try:
        publisher = await Publisher.open(connection)
        channel = await connection.channel()
        dead_letters = await channel.declare_queue(dead_letter_queue(queue), passive=True)
        moved_keys: set[str] = set()
        moved, came_back = 0, False
        while not came_back and not stop.is_set() and (limit is None or moved < limit):
            wanted = BATCH if limit is None else min(BATCH, limit - moved)
            batch, came_back = await take(dead_letters, wanted, moved_keys)
            if not batch:
                break
            # The batch's publishes wait for their confirms together (the broker syncs them to disk at
            # once); each message is acked only after its own copy is confirmed.
            await asyncio.gather(*(republish(publisher, message, queue) for message in batch))
            for message in batch:
                await message.ack()
                key = poison_key(message)
                moved_keys.add(key)
                moved += 1
                report(f"moved {key} ({death_reason(message)}) {dead_letters.name} -> {queue}")
        empty = await is_empty_once_settled(dead_letters)
        await channel.close()
        await publisher.close()
        return ReplaySummary(queue, moved, empty)
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
    left = "is now empty" if summary.dead_letters_empty else "still holds messages (new, or failed again)"
    print(f"moved {summary.moved} message(s) from {dlq} back to {queue}; {dlq} {left}")
    return 0


def print_now(line: str) -> None:
    print(line, flush=True)
