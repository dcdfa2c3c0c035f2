"""One database transaction around repository calls that commit by themselves.

The store's repository functions each commit (``claim_cry_request``, ``mark_reply_sent``...), which is right
for a single write. The gateway needs more: a claim must commit only together with the broker's confirm of the
job it guards, and a reply's "sent" mark only once Telegram took the message. Binding the session to a
connection whose transaction we own, with ``join_transaction_mode="create_savepoint"``, turns each of the
repository's commits into a savepoint release; the outer transaction commits when the block ends without an
error and rolls back otherwise (SQLAlchemy's documented "join a session into an external transaction").

While the transaction is open, a concurrent duplicate waits on the claim's unique key (or the reply row's
lock) and then sees it taken, so two deliveries of one update never both get through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


@asynccontextmanager
async def all_or_nothing(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose writes all commit when the block exits cleanly, and none of them otherwise."""
    async with engine.connect() as connection, connection.begin():
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
