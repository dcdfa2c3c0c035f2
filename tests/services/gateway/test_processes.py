"""The gateway and the stack supervisor as real processes: start, serve, stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx

from services.common.settings import REPO_ROOT
from services.stack import Stack
from tests.services.harness import free_port


async def test_gateway_without_token_serves_http_only_says_so_and_stops_on_sigint(
    amqp_url, database_url
) -> None:
    port = free_port()
    env = {**os.environ, "EARSHOT_AMQP_URL": amqp_url, "EARSHOT_DATABASE_URL": database_url}
    env |= {"EARSHOT_HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("EARSHOT_TELEGRAM_TOKEN", None)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "services.gateway", "run"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)  # also after a 503: readiness may take a moment under load
            else:
                raise AssertionError("the gateway never became ready")
        gateway.send_signal(signal.SIGINT)
        output, _ = gateway.communicate(timeout=30)
    finally:
        if gateway.poll() is None:
            gateway.kill()
    assert gateway.returncode == 0, output
    assert "the Telegram bot is off, the gateway serves HTTP only" in output
    assert "gateway stopped" in output


async def test_stack_prepares_starts_and_stops_store_and_gateway_in_order(
    amqp_url, database_url, tmp_path
) -> None:
    env = {
        "EARSHOT_AMQP_URL": amqp_url,
        "EARSHOT_DATABASE_URL": database_url,
        "EARSHOT_HTTP_PORT": str(free_port()),
        "EARSHOT_STORE_PORT": str(free_port()),
    }
    stack = Stack(env, log_dir=tmp_path / "logs")

    await stack.prepare()
    await stack.start(("store", "gateway"))
    try:
        await stack.wait_ready(timeout_s=60)
        processes = {name: service.process for name, service in stack.services.items()}
    finally:
        await stack.stop()

    assert {name: process.returncode for name, process in processes.items()} == {"store": 0, "gateway": 0}
    assert "gateway stopped" in (tmp_path / "logs" / "gateway.log").read_text()
