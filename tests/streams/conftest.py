"""Fixtures of the stream tests: the gateway (in-process, real broker and database) and a client key."""

from tests.services.conftest import api_key, sessions
from tests.services.gateway.conftest import start_gateway

__all__ = ["api_key", "sessions", "start_gateway"]
