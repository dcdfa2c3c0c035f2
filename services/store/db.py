"""The database engine and sessions, and how to tell "the database is unreachable" from a real error."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from services.common.settings import DatabaseSettings

# SQLSTATE classes that mean "not reachable right now", not "this statement is wrong":
# 08 connection exception, 53 insufficient resources, 57P0x operator intervention (shutdown, starting up).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")


def make_engine(settings: DatabaseSettings | None = None) -> AsyncEngine:
    """An async engine that checks pooled connections before use, so a database restart is survived."""
    settings = settings or DatabaseSettings()
    return create_async_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_database_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot be reached now (retry later), not a bad statement."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    cause = getattr(error, "orig", None) or error.__cause__ or error
    if isinstance(cause, sa_exc.DBAPIError):
        cause = cause.orig or cause
    original = getattr(cause, "__cause__", None)
    for candidate in (error, cause, original):
        if isinstance(candidate, OSError | TimeoutError | ConnectionError):
            return True
        if isinstance(candidate, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        sqlstate = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
    return isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError | sa_exc.TimeoutError)


async def _maintenance_connection(url: URL) -> asyncpg.Connection:
    """A connection to the server's ``postgres`` database, as a fresh machine has only that one."""
    return await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database="postgres",
        timeout=10,
    )


async def drop_database(settings: DatabaseSettings) -> None:
    """Drop the database named in the URL, closing its connections (the demo and benchmark start afresh)."""
    url = make_url(settings.database_url)
    connection = await _maintenance_connection(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


async def ensure_database(settings: DatabaseSettings | None = None) -> bool:
    """Create the database named in the URL if it does not exist yet; True if it was created."""
    settings = settings or DatabaseSettings()
    url = make_url(settings.database_url)
    connection = await _maintenance_connection(url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{url.database}"')
        return True
    finally:
        await connection.close()
