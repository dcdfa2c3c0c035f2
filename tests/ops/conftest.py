"""The ops tests use the service tests' session factory and API key fixtures."""

from tests.services.conftest import api_key, sessions

__all__ = ["api_key", "sessions"]
