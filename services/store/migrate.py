"""Apply the Alembic migrations programmatically (no alembic.ini: the script location is this package)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from services.store.db import ensure_database
from services.store.settings import StoreSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(settings: StoreSettings | None = None, revision: str = "head") -> None:
    """Create the database if needed and bring its schema up to ``revision``; run before services start."""
    settings = settings or StoreSettings()
    asyncio.run(ensure_database(settings))
    command.upgrade(alembic_config(settings.database_url), revision)
