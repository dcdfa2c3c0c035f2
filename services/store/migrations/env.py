"""Alembic environment: runs migrations over the async engine built from ``EARSHOT_DATABASE_URL``."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from services.store.db import make_engine
from services.store.models import Base
from services.store.settings import StoreSettings

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    settings = StoreSettings(database_url=url) if url else StoreSettings()
    engine = make_engine(settings)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "offline (SQL script) migrations are not supported; run `python -m services.store migrate`"
    )
asyncio.run(run_online())
