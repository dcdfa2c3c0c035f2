"""What the service tests drive the real system with: the test's own vhost and database, service subprocesses.

Nothing here is a stand-in: ``BrokerProbe`` talks AMQP to the real RabbitMQ (and reads live queue depths with
``rabbitmqctl``, because the management API's counters lag by several seconds), ``DatabaseProbe`` reads the
real PostgreSQL, and ``ServiceProcess`` runs the real worker and store programs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.amqp import Publisher, connect, declare_topology
from services.common.contracts import Contract
from services.common.settings import REPO_ROOT, BrokerSettings
from services.common.topology import QUEUES
from services.stack import SERVICE_COMMANDS

MANAGEMENT_API = os.environ.get("EARSHOT_TEST_MANAGEMENT_API", "http://127.0.0.1:15672/api")
MANAGEMENT_AUTH = ("guest", "guest")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- vhost and database lifecycle (used by the session fixtures) ---------------------------------------


def vhost_url(vhost: str) -> str:
    """The machine's broker URL (``EARSHOT_AMQP_URL`` or the default) with its vhost replaced."""
    base = urlsplit(BrokerSettings().amqp_url)
    return base._replace(path="/" + quote(vhost, safe="")).geturl()


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def create_vhost(vhost: str) -> None:
    with httpx.Client(base_url=MANAGEMENT_API, auth=MANAGEMENT_AUTH, timeout=10) as api:
        api.put(f"/vhosts/{quote(vhost, safe='')}").raise_for_status()
        user = urlsplit(BrokerSettings().amqp_url).username or "guest"
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        api.put(f"/permissions/{quote(vhost, safe='')}/{user}", json=permissions).raise_for_status()


def delete_vhost(vhost: str) -> None:
    with httpx.Client(base_url=MANAGEMENT_API, auth=MANAGEMENT_AUTH, timeout=30) as api:
        api.delete(f"/vhosts/{quote(vhost, safe='')}")


async def drop_database(database_url: str) -> None:
    """Drop the test database, disconnecting whoever is still on it."""
    name = urlsplit(database_url).path.lstrip("/")
    maintenance = urlsplit(database_url)._replace(path="/postgres").geturl()
    engine = create_async_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def migrate_database(database_url: str) -> None:
    """Create and migrate through the real CLI, as ``make run`` does."""
    env = {**os.environ, "EARSHOT_DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-m", "services.store", "migrate"], env=env, cwd=REPO_ROOT, check=True, timeout=120
    )


# --- broker --------------------------------------------------------------------------------------------


class BrokerProbe:
    """A test's own connection to its vhost: publish like a service, read queues, drop connections."""

    def __init__(self, amqp_url: str, connection: AbstractRobustConnection, publisher: Publisher) -> None:
        self.amqp_url = amqp_url
        self.vhost = vhost_of(amqp_url)
        self.connection = connection
        self.publisher = publisher

    @classmethod
    async def open(cls, amqp_url: str) -> BrokerProbe:
        connection = await connect(BrokerSettings(amqp_url=amqp_url), name="earshot-test-probe")
        channel = await connection.channel()
        await declare_topology(channel)
        await channel.close()
        return cls(amqp_url, connection, await Publisher.open(connection))

    async def close(self) -> None:
        await self.publisher.close()
        await self.connection.close()

    async def publish(self, message: Contract, exchange: str, routing_key: str, message_id: str) -> None:
        await self.publisher.publish(message, exchange, routing_key, message_id=message_id)

    async def publish_raw(self, body: bytes, exchange: str, routing_key: str, message_id: str) -> None:
        await self.publisher.publish_body(body, exchange, routing_key, message_id=message_id)

    async def purge_all(self) -> None:
        channel = await self.connection.channel()
        for queue in QUEUES:
            declared = await channel.declare_queue(queue.name, passive=True)
            await declared.purge()
        await channel.close()

    async def ready_and_consumers(self, queue: str) -> tuple[int, int]:
        """Live ready-message and consumer counts (passive declare answers from the queue itself)."""
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            result = declared.declaration_result
            return result.message_count, result.consumer_count
        finally:
            await channel.close()

    def unacked(self, queue: str) -> int:
        """Live unacknowledged count, from ``rabbitmqctl`` (the management API's figure lags)."""
        output = subprocess.run(
            [
                "rabbitmqctl",
                "list_queues",
                "-q",
                "--no-table-headers",
                "-p",
                self.vhost,
                "name",
                "messages_unacknowledged",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        for line in output.splitlines():
            name, _, count = line.rpartition("\t")
            if name.strip() == queue:
                return int(count)
        raise KeyError(queue)

    async def wait_for_consumers(
        self, queue: str, count: int = 1, timeout_s: float = 30.0, started: ServiceProcess | None = None
    ) -> None:
        """Wait for ``count`` consumers on ``queue``; fail at once if the ``started`` process exits."""

        async def enough() -> bool:
            if started is not None and not started.running():
                raise AssertionError(f"{started.name} exited:\n{started.output()[-3000:]}")
            return (await self.ready_and_consumers(queue))[1] >= count

        await eventually(enough, timeout_s, f"{count} consumer(s) on {queue}")

    async def drain(self, queue: str) -> list[AbstractIncomingMessage]:
        """Take every message now ready in ``queue`` (acked: they leave the queue)."""
        channel = await self.connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        messages = []
        while (message := await declared.get(fail=False, no_ack=True)) is not None:
            messages.append(message)
        await channel.close()
        return messages

    def service_connections(self) -> list[str]:
        """The pids of the services' live connections to the vhost (``rabbitmqctl``: the API's list lags)."""
        output = subprocess.run(
            [
                "rabbitmqctl",
                "list_connections",
                "-q",
                "--no-table-headers",
                "-p",
                self.vhost,
                "pid",
                "client_properties",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        lines = [line for line in output.splitlines() if line.strip()]
        return [line.split("\t")[0] for line in lines if "earshot-test-probe" not in line]

    def close_connections(self) -> list[str]:
        """Close every service connection to the vhost from the broker side, as a network fault would."""
        pids = self.service_connections()
        for pid in pids:
            subprocess.run(
                ["rabbitmqctl", "close_connection", pid, "test: connection dropped"],
                capture_output=True,
                check=True,
                timeout=30,
            )
        return pids


async def wait_until_serving(store_url: str, store: ServiceProcess, timeout_s: float = 30.0) -> None:
    """Wait for the store's HTTP API to answer ``/healthz``; fail at once if the store exits."""

    async def answers() -> bool:
        assert store.running(), f"the store exited:\n{store.output()[-3000:]}"
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{store_url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(answers, timeout_s, "the store's HTTP API")


# --- database ------------------------------------------------------------------------------------------


class DatabaseProbe:
    """Reads the test database directly, to check what the store wrote."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rows(self, sql: str, **parameters: object) -> list[dict]:
        async with self.engine.connect() as connection:
            result = await connection.execute(text(sql), parameters)
            return [dict(row._mapping) for row in result]

    async def count(self, table: str, where: str = "TRUE", **parameters: object) -> int:
        rows = await self.rows(f"SELECT count(*) AS n FROM {table} WHERE {where}", **parameters)
        return rows[0]["n"]


# --- service processes ---------------------------------------------------------------------------------


class ServiceProcess:
    """One real service program running as a child process, with its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            SERVICE_COMMANDS[name], env=env, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait for a graceful exit; the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        finally:
            self._log.close()

    async def stop(self, timeout_s: float = 20.0) -> int:
        """``terminate`` without blocking the test's event loop (which may be relaying for the service)."""
        return await asyncio.to_thread(self.terminate, timeout_s)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


# --- a database outage the test controls ----------------------------------------------------------------


class TcpProxy:
    """A TCP relay on a local port: the store reaches PostgreSQL through it, and the test pulls the plug.

    ``stop`` closes the listening socket and cuts every relayed connection, so the store sees exactly what
    it would see if the database went away; ``start`` serves the same port again. The machine's PostgreSQL
    keeps running for everyone else.
    """

    def __init__(self, target_host: str, target_port: int, listen_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
