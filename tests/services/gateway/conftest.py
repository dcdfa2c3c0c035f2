"""The gateway running in-process against the real RabbitMQ vhost and PostgreSQL database of this test run.

``amqp_url``, ``database_url``, ``blob_dir`` and ``broker`` (tests/conftest.py) give a fresh vhost, a
migrated database, a blob directory and a probe that reads the queues; ``api_key``
(tests/services/conftest.py) a client key. Each test starts its own gateway with a local Telegram Bot API
stand-in, reached over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.gateway.runtime import serve
from services.gateway.settings import GatewaySettings
from services.gateway.telegram_standin import TelegramStandIn
from tests.services.harness import BrokerProbe, free_port, wait_until_serving

TOKEN = "123456789:gateway-tests-token"
# Small limits keep the size tests cheap.
TEST_MAX_UPLOAD_BYTES = 300_000
TEST_INLINE_MAX_BYTES = 20_000


@dataclass
class RunningGateway:
    settings: GatewaySettings
    standin: TelegramStandIn
    url: str


@pytest.fixture
async def start_gateway(
    amqp_url: str, database_url: str, blob_dir: Path, broker: BrokerProbe
) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    """Start a gateway (bot on, polling unless overridden) and its Bot API stand-in; both stop at teardown.

    Depends on ``broker`` so every topology queue is purged before the gateway starts.
    """
    running: list[tuple[asyncio.Event, asyncio.Task[None], TelegramStandIn]] = []

    async def start(**overrides) -> RunningGateway:
        standin = TelegramStandIn(TOKEN)
        api_base = await standin.start()
        fields = {
            "amqp_url": amqp_url,
            "database_url": database_url,
            "telegram_token": TOKEN,
            "telegram_api_base": api_base,
            "telegram_polling_timeout": 1,
            "http_port": free_port(),
            "max_upload_bytes": TEST_MAX_UPLOAD_BYTES,
            "max_voice_duration_s": 30.0,
            "max_track_duration_s": 30.0,
            "inline_audio_max_bytes": TEST_INLINE_MAX_BYTES,
        }
        settings = GatewaySettings(**(fields | overrides))
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, stop))
        running.append((stop, task, standin))
        url = f"http://127.0.0.1:{settings.http_port}"
        await wait_until_healthy(url, task)
        return RunningGateway(settings=settings, standin=standin, url=url)

    yield start
    for stop, task, standin in running:
        stop.set()
        await asyncio.wait_for(task, 30)
        await standin.stop()


@pytest.fixture
async def gateway_with_store(start_gateway, start_service, store_url: str) -> RunningGateway:
    """A gateway (bot on) and the real store process, which stores results and publishes the replies."""
    await wait_until_serving(store_url, start_service("store"))
    return await start_gateway()


async def wait_until_healthy(url: str, task: asyncio.Task[None], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            if task.done():
                task.result()  # the gateway failed to start: show why
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"gateway at {url} did not come up")
