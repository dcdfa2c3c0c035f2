"""The running store: the results consumer, the HTTP API and the donation purge in one process.

Stopped gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator

import uvicorn

from services.common.amqp import Consumer, Publisher, connect, shutdown_event
from services.common.topology import STORE_RESULTS_QUEUE
from services.store.db import make_engine, make_session_factory
from services.store.donations import purge_periodically
from services.store.http import create_app
from services.store.results import DatabaseHealth, ResultWriter, TrackSignals
from services.store.settings import StoreSettings

log = logging.getLogger(__name__)

# How long shutdown waits for result writes in flight; a write still waiting for the database after that is
# abandoned unacked, and the broker hands the result out again.
SHUTDOWN_GRACE_S = 10.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the store's shutdown sequence owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: StoreSettings) -> None:
    stop = shutdown_event()
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    connection = await connect(settings, name=f"earshot-store-{os.getpid()}")
    publisher = await Publisher.open(connection)
    health, signals = DatabaseHealth(), TrackSignals()
    writer = ResultWriter(sessions, publisher, settings, health, signals)
    consumer = await Consumer.start(connection, STORE_RESULTS_QUEUE, writer.handle, settings.prefetch)
    app = create_app(sessions, settings, health, signals, broker_ready=lambda: not connection.is_closed)
    config = uvicorn.Config(
        app,
        host=settings.store_host,
        port=settings.store_port,
        lifespan="off",
        timeout_graceful_shutdown=5,
        log_config=None,  # uvicorn logs through the root logger: JSON like the rest
    )
    server = _Server(config)
    http_task = asyncio.create_task(server.serve())
    stop_task = asyncio.create_task(stop.wait())
    purge_task = asyncio.create_task(
        purge_periodically(sessions, settings, settings.donation_purge_interval_s)
    )
    await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: no new results, finishing %d in flight", consumer.in_flight)
    await consumer.stop(grace_s=SHUTDOWN_GRACE_S)
    server.should_exit = True
    await asyncio.gather(http_task, return_exceptions=True)
    stop_task.cancel()
    purge_task.cancel()
    await publisher.close()
    await connection.close()
    await engine.dispose()
    log.info("stopped")
    if http_task.done() and not stop.is_set():
        raise SystemExit(f"the HTTP server on {settings.store_host}:{settings.store_port} stopped by itself")
