"""Shared fixtures: a fresh RabbitMQ vhost and PostgreSQL database per test run, and real service processes.

- ``amqp_url`` / ``database_url`` (session): a vhost and a migrated database with unique names, exported as
  ``EARSHOT_AMQP_URL`` / ``EARSHOT_DATABASE_URL`` for this process and every subprocess, removed at the end.
- ``blob_dir`` (session): the run's content-addressed blob directory, exported as ``EARSHOT_BLOB_DIR``.
- ``broker`` / ``database`` (per test): probes on those, with every topology queue purged first.
- ``start_service`` (per test): ``start_service("store")``, ``("classifier")`` or ``("kws")`` starts the real
  program with the test environment (plus overrides) and stops whatever is left at the end of the test.
  ``store_url`` is where the store started by it serves HTTP.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.settings import DatabaseSettings
from tests.services.harness import (
    BrokerProbe,
    DatabaseProbe,
    ServiceProcess,
    create_vhost,
    delete_vhost,
    drop_database,
    free_port,
    migrate_database,
    vhost_url,
)

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    vhost = f"earshot-test-{RUN_ID}"
    create_vhost(vhost)
    url = vhost_url(vhost)
    previous = os.environ.get("EARSHOT_AMQP_URL")
    os.environ["EARSHOT_AMQP_URL"] = url
    yield url
    _restore_env("EARSHOT_AMQP_URL", previous)
    delete_vhost(vhost)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    base = DatabaseSettings().database_url
    url = base.rsplit("/", 1)[0] + f"/earshot_test_{RUN_ID}"
    migrate_database(url)
    previous = os.environ.get("EARSHOT_DATABASE_URL")
    os.environ["EARSHOT_DATABASE_URL"] = url
    yield url
    _restore_env("EARSHOT_DATABASE_URL", previous)
    asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("blobs")
    previous = os.environ.get("EARSHOT_BLOB_DIR")
    os.environ["EARSHOT_BLOB_DIR"] = str(path)
    yield path
    _restore_env("EARSHOT_BLOB_DIR", previous)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[BrokerProbe]:
    probe = await BrokerProbe.open(amqp_url)
    await probe.purge_all()
    yield probe
    await probe.close()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[DatabaseProbe]:
    engine = create_async_engine(database_url)
    yield DatabaseProbe(engine)
    await engine.dispose()


@pytest.fixture
def store_port() -> int:
    return free_port()


@pytest.fixture
def store_url(store_port: int) -> str:
    return f"http://127.0.0.1:{store_port}"


@pytest.fixture
def start_service(
    amqp_url: str, database_url: str, blob_dir: Path, store_port: int, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(name: str, **overrides: str) -> ServiceProcess:
        env = {
            **os.environ,
            "EARSHOT_AMQP_URL": amqp_url,
            "EARSHOT_DATABASE_URL": database_url,
            "EARSHOT_BLOB_DIR": str(blob_dir),
            "EARSHOT_STORE_PORT": str(store_port),
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
        service = ServiceProcess(name, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(service)
        return service

    yield start
    for service in started:
        if service.running():
            service.terminate()


def _restore_env(name: str, previous: str | None) -> None:
    if previous is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = previous
