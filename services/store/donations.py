"""The purge of donated audio: recordings kept longer than ``EARSHOT_DONATION_RETENTION_DAYS`` are deleted.

Run once with ``python -m services.store purge-donations`` (e.g. from cron), and every
``EARSHOT_DONATION_PURGE_INTERVAL_S`` by the running store. The clock is a parameter, so a test can stand
at "91 days later" without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import utc_now
from services.store import repository
from services.store.settings import DonationSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


async def purge_expired_donations(
    sessions: async_sessionmaker[AsyncSession], settings: DonationSettings, clock: Clock = utc_now
) -> int:
    """Delete the donations older than the retention period as of ``clock()``; how many were deleted."""
    cutoff = clock() - timedelta(days=settings.donation_retention_days)
    async with sessions() as session:
        deleted = await repository.purge_donations(session, cutoff)
    if deleted:
        log.info("purged %d donated recording(s) kept since before %s", deleted, cutoff.isoformat())
    return deleted


async def purge_periodically(
    sessions: async_sessionmaker[AsyncSession], settings: DonationSettings, interval_s: float
) -> None:
    """Purge now and then every ``interval_s`` until cancelled; a failed purge is logged and tried again."""
    while True:
        try:
            await purge_expired_donations(sessions, settings)
        except Exception as error:  # the database may be down; the next round tries again
            log.warning("donation purge failed (%s: %s); retrying later", type(error).__name__, error)
        await asyncio.sleep(interval_s)
