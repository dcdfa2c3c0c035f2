"""``python -m services.store replay-dlq`` against the real broker: it moves, prints, and loses nothing when
killed half-way (at worst the batch in hand is in both queues)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

from services.common.settings import REPO_ROOT
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    DEAD_LETTER_EXCHANGE,
    KWS_SCAN_QUEUE,
    dead_letter_queue,
)
from services.common.worker import ATTEMPT_HEADER
from services.store.replay import BATCH
from tests.services.harness import BrokerProbe

QUEUE = CRY_CLASSIFY_QUEUE  # no worker consumes it in these tests, so what arrives stays there
DLQ = dead_letter_queue(QUEUE)


async def dead_letter(broker: BrokerProbe, count: int, prefix: str) -> list[str]:
    """Put ``count`` messages into the DLQ the way a worker's reject would leave them (attempt header set)."""
    ids = [f"{prefix}-{index}" for index in range(count)]
    for message_id in ids:
        await broker.publisher.publish_body(
            f'{{"id": "{message_id}"}}'.encode(), DEAD_LETTER_EXCHANGE, DLQ, message_id=message_id,
            headers={ATTEMPT_HEADER: 3, "x-custom": "kept"},
        )  # fmt: skip
    return ids


def replay_command(amqp_url: str, *arguments: str, queue: str = QUEUE) -> subprocess.Popen[str]:
    env = {**os.environ, "EARSHOT_AMQP_URL": amqp_url, "PYTHONUNBUFFERED": "1", "EARSHOT_LOG_FORMAT": "text"}
    return subprocess.Popen(
        [sys.executable, "-m", "services.store", "replay-dlq", queue, *arguments],
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


async def test_replay_moves_each_message_back_prints_it_and_drops_its_death_history(
    broker: BrokerProbe, amqp_url: str
) -> None:
    ids = await dead_letter(broker, 3, "replay")
    process = replay_command(amqp_url)
    output, errors = await asyncio.to_thread(process.communicate, timeout=60)

    assert process.returncode == 0, errors
    assert [line.split()[1] for line in output.splitlines()[:3]] == ids
    assert output.splitlines()[-1] == f"moved 3 message(s) from {DLQ} back to {QUEUE}; {DLQ} is now empty"
    moved = await broker.drain(QUEUE)
    assert [message.message_id for message in moved] == ids
    assert [message.body for message in moved] == [f'{{"id": "{i}"}}'.encode() for i in ids]
    assert all(ATTEMPT_HEADER not in message.headers for message in moved)  # full retries again
    assert all(message.headers.get("x-custom") == "kept" for message in moved)
    assert await broker.drain(DLQ) == []


async def test_a_replay_killed_half_way_loses_nothing_and_a_second_run_finishes_it(
    broker: BrokerProbe, amqp_url: str
) -> None:
    ids = await dead_letter(broker, 20 * BATCH, "interrupted")
    process = replay_command(amqp_url)
    assert process.stdout is not None
    moved_lines = 0
    while moved_lines < 2 * BATCH:
        line = await asyncio.to_thread(process.stdout.readline)
        assert line, f"the replay ended early: {process.stderr.read() if process.stderr else ''}"
        moved_lines += line.startswith("moved interrupted-")
    process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.wait, 30)

    in_queue = [message.message_id for message in await broker.drain(QUEUE)]
    still_dead = await broker.ready_and_consumers(DLQ)
    assert 2 * BATCH <= len(in_queue) < len(ids), "the kill should land half-way"
    # Nothing lost: every message is in the work queue or still in the DLQ (the batch in hand maybe in both).
    assert len(ids) <= len(in_queue) + still_dead[0] <= len(ids) + BATCH
    assert set(Counter(in_queue).values()) == {1}

    finish = replay_command(amqp_url)
    output, errors = await asyncio.to_thread(finish.communicate, timeout=120)
    assert finish.returncode == 0, errors
    assert output.splitlines()[-1].endswith(f"{DLQ} is now empty")
    replayed = in_queue + [message.message_id for message in await broker.drain(QUEUE)]
    assert set(replayed) == set(ids)
    assert len(replayed) - len(ids) <= BATCH


async def test_a_replay_of_jobs_that_fail_again_at_once_ends_instead_of_looping(
    broker: BrokerProbe, amqp_url: str, start_service
) -> None:
    worker = start_service("kws")  # rejects these bodies at once: they go straight back to kws.scan.dlq
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, started=worker)
    kws_dlq = dead_letter_queue(KWS_SCAN_QUEUE)
    ids = [f"poison-{index}" for index in range(3 * BATCH)]
    for message_id in ids:
        await broker.publish_raw(b"{not a job", DEAD_LETTER_EXCHANGE, kws_dlq, message_id=message_id)

    process = replay_command(amqp_url, queue=KWS_SCAN_QUEUE)
    output, errors = await asyncio.to_thread(process.communicate, timeout=120)

    assert process.returncode == 0, errors
    moved = [line.split()[1] for line in output.splitlines() if line.startswith("moved poison-")]
    assert moved and len(moved) == len(set(moved)), "no message is moved twice in one run"
    assert output.splitlines()[-1].startswith(f"moved {len(moved)} message(s) from {kws_dlq}")
