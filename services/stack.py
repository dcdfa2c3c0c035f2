"""Every Earshot service as a child process on loopback: what ``make run``, the demo and the benchmark start.

``Stack.prepare`` applies the database migrations (creating the database if missing) and declares the AMQP
topology; ``start`` launches the store, both workers and the gateway, each in its own process group so a
terminal's Ctrl-C reaches only this supervisor, which then stops them in order: the gateway first (no new
jobs), the workers (finish their jobs in flight), the store last (writes the last results).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from services.common.amqp import connect, declare_topology
from services.common.settings import REPO_ROOT, BrokerSettings, DatabaseSettings
from services.store.db import drop_database

# How each service starts: every service package answers ``python -m services.<name> run``.
SERVICE_COMMANDS: dict[str, list[str]] = {
    name: [sys.executable, "-m", f"services.{name}", "run"]
    for name in ("store", "classifier", "kws", "gateway")
}
START_ORDER = ("store", "classifier", "kws", "gateway")
# Where ``make run``'s workers serve /metrics (the gateway and the store serve it on their HTTP ports).
WORKER_METRICS_PORTS = {"classifier": 9101, "kws": 9102}
STOP_TIMEOUT_S = 30.0
MANAGEMENT_API = "http://127.0.0.1:15672/api"

T = TypeVar("T")


class StackFailed(RuntimeError):
    """A service exited or never became ready; the message carries the end of its log."""


@dataclass
class Service:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    echo_task: asyncio.Task[None] | None = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """The services of one Earshot installation: ``env`` holds its ``EARSHOT_*`` settings."""

    env: dict[str, str]
    log_dir: Path
    echo: bool = False  # copy each service's log lines, prefixed with its name, to this process's stdout
    metrics_ports: dict[str, int] = field(default_factory=dict)  # service name -> EARSHOT_METRICS_PORT
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env.get('EARSHOT_HTTP_PORT', '8080')}"

    @property
    def store_url(self) -> str:
        return f"http://127.0.0.1:{self.env.get('EARSHOT_STORE_PORT', '8081')}"

    def child_env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env.setdefault("OMP_NUM_THREADS", "1")  # two workers share a small machine
        env.setdefault("EARSHOT_STORE_PUBLIC_URL", self.store_url)
        return env

    async def prepare(self) -> None:
        """Create and migrate the database, then declare the AMQP topology."""
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.store", "migrate", env=self.child_env(), cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await migrate.communicate()
        if migrate.returncode != 0:
            raise StackFailed(f"database migration failed:\n{output.decode(errors='replace')}")
        amqp_url = self.child_env().get("EARSHOT_AMQP_URL") or BrokerSettings().amqp_url
        connection = await connect(BrokerSettings(amqp_url=amqp_url), name="earshot-stack-setup")
        try:
            async with connection.channel() as channel:
                await declare_topology(channel)
        finally:
            await connection.close()

    async def start(self, names: tuple[str, ...] = START_ORDER) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            log_path = self.log_dir / f"{name}.log"
            env = self.child_env()
            if name in self.metrics_ports:
                env["EARSHOT_METRICS_PORT"] = str(self.metrics_ports[name])
            process = await asyncio.create_subprocess_exec(
                *SERVICE_COMMANDS[name], env=env, cwd=REPO_ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            service = Service(name, process, log_path)
            service.echo_task = asyncio.create_task(self._copy_output(service))
            self.services[name] = service

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until the gateway and the store answer /readyz; fail early if any service exits."""
        deadline = time.monotonic() + timeout_s
        pending = {self.gateway_url, self.store_url}
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                self.check_running()
                if time.monotonic() > deadline:
                    raise StackFailed(f"not ready after {timeout_s:.0f} s: {', '.join(sorted(pending))}")
                for url in list(pending):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{url}/readyz")).status_code == 200:
                            pending.discard(url)
                await asyncio.sleep(0.2)

    def check_running(self) -> None:
        for service in self.services.values():
            if service.process.returncode is not None:
                raise StackFailed(
                    f"{service.name} exited with code {service.process.returncode}; its log "
                    f"({service.log_path}) ends with:\n{service.log_tail()}"
                )

    async def wait_for_exit(self) -> Service:
        """Return the first service that exits (a healthy stack runs until stopped)."""
        waits = {asyncio.create_task(s.process.wait()): s for s in self.services.values()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]

    async def stop(self) -> None:
        """SIGTERM in reverse start order, each waited for; SIGKILL only if one hangs."""
        for name in reversed(START_ORDER):
            service = self.services.get(name)
            if service is None:
                continue
            if service.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    service.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(service.process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    service.process.kill()
                    await service.process.wait()
            if service.echo_task is not None:
                await service.echo_task
        self.services.clear()

    async def _copy_output(self, service: Service) -> None:
        assert service.process.stdout is not None
        with service.log_path.open("ab") as log:
            async for line in service.process.stdout:
                log.write(line)
                log.flush()
                if self.echo:
                    _echo(sys.stdout, service.name, line)


async def cancelled_by_signals(work: Coroutine[object, object, T]) -> T:
    """Run ``work``, cancelling it on SIGTERM or SIGINT so its ``finally`` stops the stack it started.

    The services run in their own process groups, so without this a signal to the supervisor would leave
    them running as orphans.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _echo(stream: IO[str], name: str, line: bytes) -> None:
    stream.write(f"[{name:<10}] {line.decode(errors='replace')}")
    stream.flush()


async def isolated_env(name: str, http_port: int, store_port: int) -> dict[str, str]:
    """Settings for a stack of its own: a fresh database ``name`` and a fresh vhost ``name``.

    The demo and the benchmark use this, so they neither see nor disturb what ``make run`` holds. Both are
    recreated on every run: nothing outlives a run, results of an older model are never served as today's,
    and queues declared by an older topology would refuse today's arguments.
    """
    broker_url = urlsplit(BrokerSettings().amqp_url)
    user = broker_url.username or "guest"
    async with httpx.AsyncClient(
        base_url=MANAGEMENT_API, auth=(user, broker_url.password or "guest"), timeout=10
    ) as api:
        await api.delete(f"/vhosts/{quote(name, safe='')}")
        (await api.put(f"/vhosts/{quote(name, safe='')}")).raise_for_status()
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        (await api.put(f"/permissions/{quote(name, safe='')}/{user}", json=permissions)).raise_for_status()
    database_url = DatabaseSettings().database_url.rsplit("/", 1)[0] + f"/{name}"
    await drop_database(DatabaseSettings(database_url=database_url))
    return {
        "EARSHOT_AMQP_URL": broker_url._replace(path="/" + quote(name, safe="")).geturl(),
        "EARSHOT_DATABASE_URL": database_url,
        "EARSHOT_HTTP_PORT": str(http_port),
        "EARSHOT_STORE_PORT": str(store_port),
        "EARSHOT_BLOB_DIR": str(REPO_ROOT / ".cache" / name / "blobs"),
    }
