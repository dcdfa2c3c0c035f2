"""Base settings: every service reads its configuration from ``EARSHOT_*`` environment variables."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# The audio corpora live beside the clone, never inside it.
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
# Generated training data, feature caches and run outputs: ignored by git.
CACHE_DIR = REPO_ROOT / ".cache"


class EarshotSettings(BaseSettings):
    """Parent of each service's settings class, so the prefix and .env handling live in one place."""

    model_config = SettingsConfigDict(env_prefix="EARSHOT_", env_file=".env", extra="ignore")


class BrokerSettings(EarshotSettings):
    """Where RabbitMQ is and how much each consumer takes at once."""

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    prefetch: int = 4


class DatabaseSettings(EarshotSettings):
    """Where PostgreSQL is (SQLAlchemy async URL)."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/earshot"
