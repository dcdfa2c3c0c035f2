"""How long a new recording will wait: the cry queue's ready jobs over the rate results are being written.

The ready count comes from the broker itself (a passive declare answers with the queue's live count). The
rate is what the workers actually achieved: cry results the store wrote in the last ``window_s``, divided by
the time since the first of them. So the estimate needs no guess of a worker's speed, follows however many
workers run, and says "cannot estimate" rather than invent a figure when no result was written lately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import utc_now
from services.common.topology import CRY_CLASSIFY_QUEUE
from services.store import repository

# Fewer results than this in the window make no rate worth quoting.
MIN_RESULTS_FOR_RATE = 3
# The shortest span a rate is measured over, so a burst of results does not look like infinite speed.
MIN_RATE_SPAN_S = 5.0
# Without a measured rate, a queue this long (or any queue no worker consumes) is worth mentioning; a job or
# two ready for an instant while an idle worker picks them up is not.
MIN_WAITING_WITHOUT_RATE = 5


@dataclass(frozen=True)
class Backlog:
    """Jobs waiting ahead of a new one, the workers consuming them, and the measured service rate (None
    when there is none to measure)."""

    waiting: int
    consumers: int
    rate_per_s: float | None

    @property
    def estimated_wait_s(self) -> float | None:
        """Seconds until a job published now is answered: everyone ahead of it, then itself."""
        if self.rate_per_s is None:
            return None
        return (self.waiting + 1) / self.rate_per_s

    def backed_up(self, notice_s: float) -> bool:
        """Worth telling the parent: a long estimated wait, or jobs piling up with no rate to estimate."""
        if self.waiting == 0:
            return False
        wait_s = self.estimated_wait_s
        if wait_s is None:
            return self.consumers == 0 or self.waiting >= MIN_WAITING_WITHOUT_RATE
        return wait_s > notice_s


def service_rate(results: repository.RecentResults, now: datetime) -> float | None:
    """Results per second since the first recent one; None when too few to say."""
    if results.count < MIN_RESULTS_FOR_RATE or results.first_at is None:
        return None
    span_s = max((now - results.first_at).total_seconds(), MIN_RATE_SPAN_S)
    return results.count / span_s


class BacklogMeter:
    """Measures the cry queue's backlog on demand (one passive declare and one query)."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        sessions: async_sessionmaker[AsyncSession],
        window_s: float,
    ) -> None:
        self._connection = connection
        self._sessions = sessions
        self._window_s = window_s

    async def measure(self) -> Backlog:
        async with self._connection.channel() as channel:
            declared = await channel.declare_queue(CRY_CLASSIFY_QUEUE, passive=True)
            waiting = declared.declaration_result.message_count
            consumers = declared.declaration_result.consumer_count
        if waiting == 0:
            return Backlog(waiting=0, consumers=consumers, rate_per_s=None)
        now = utc_now()
        async with self._sessions() as session:
            results = await repository.recent_cry_results(session, now - timedelta(seconds=self._window_s))
        return Backlog(waiting=waiting, consumers=consumers, rate_per_s=service_rate(results, now))
