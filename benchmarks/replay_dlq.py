"""How fast ``replay-dlq`` moves dead letters back: ``python -m benchmarks.replay_dlq``.

In a vhost of its own (``earshot_bench_replay``, recreated), fills ``kws.scan.dlq`` with N messages of 1 KiB,
times ``replay_dead_letters`` moving them all back (one confirmed publish, then one ack, per message), and
prints the median rate of several runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from services.common.amqp import Publisher, connect, declare_topology
from services.common.settings import BrokerSettings
from services.common.topology import DEAD_LETTER_EXCHANGE, KWS_SCAN_QUEUE, dead_letter_queue
from services.stack import isolated_env
from services.store.replay import replay_dead_letters

MESSAGES = 1000
RUNS = 5
BODY = b"x" * 1024


async def fill_dead_letters(settings: BrokerSettings) -> None:
    connection = await connect(settings, name="earshot-bench-replay-fill")
    try:
        async with connection.channel() as channel:
            await declare_topology(channel)
            await (await channel.declare_queue(KWS_SCAN_QUEUE, passive=True)).purge()
        publisher = await Publisher.open(connection)
        dlq = dead_letter_queue(KWS_SCAN_QUEUE)
        for index in range(MESSAGES):
            await publisher.publish_body(BODY, DEAD_LETTER_EXCHANGE, dlq, message_id=f"bench-{index}")
        await publisher.close()
    finally:
        await connection.close()


async def main() -> None:
    env = await isolated_env("earshot_bench_replay", http_port=0, store_port=0)
    settings = BrokerSettings(amqp_url=env["EARSHOT_AMQP_URL"])
    rates = []
    for _ in range(RUNS):
        await fill_dead_letters(settings)
        started = time.perf_counter()
        summary = await replay_dead_letters(settings, KWS_SCAN_QUEUE, report=lambda _line: None)
        elapsed = time.perf_counter() - started
        assert summary.moved == MESSAGES, summary
        rates.append(MESSAGES / elapsed)
    median = statistics.median(rates)
    print(
        f"replay-dlq: {MESSAGES} messages of 1 KiB per run, {RUNS} runs: median {median:.0f} messages/s "
        f"(min {min(rates):.0f}, max {max(rates):.0f})"
    )


if __name__ == "__main__":
    asyncio.run(main())
