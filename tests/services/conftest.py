"""Fixtures of the store and worker tests: a session factory on the test database and an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.settings import DatabaseSettings
from services.store import repository
from services.store.db import make_engine, make_session_factory


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(DatabaseSettings(database_url=database_url))
    yield make_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def api_key(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        return await repository.create_api_key(session, "service tests")
