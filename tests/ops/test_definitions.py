"""``deploy/rabbitmq/definitions.json`` mirrors ``services.common.topology`` and a real broker accepts it."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import httpx

from services.common.amqp import connect, declare_topology
from services.common.broker_definitions import DEFINITIONS_PATH, EXPORT_COMMAND, definitions
from services.common.settings import BrokerSettings
from services.common.topology import QUEUES
from tests.services.harness import MANAGEMENT_API, MANAGEMENT_AUTH, create_vhost, delete_vhost, vhost_url


def test_the_committed_definitions_equal_what_the_topology_generates() -> None:
    committed = json.loads(DEFINITIONS_PATH.read_text())
    assert committed == definitions(), (
        f"{DEFINITIONS_PATH} is out of date with services/common/topology.py; regenerate it with "
        f"`{EXPORT_COMMAND}` and commit the result"
    )


async def test_a_broker_given_the_definitions_has_the_topology_the_services_declare() -> None:
    vhost = f"earshot-definitions-{uuid.uuid4().hex[:8]}"
    create_vhost(vhost)
    try:
        with httpx.Client(base_url=MANAGEMENT_API, auth=MANAGEMENT_AUTH, timeout=30) as api:
            imported = api.post(
                f"/definitions/{quote(vhost, safe='')}", json=json.loads(DEFINITIONS_PATH.read_text())
            )
            assert imported.status_code in (200, 201, 204), imported.text
            queues = {q["name"]: q for q in api.get(f"/queues/{quote(vhost, safe='')}").json()}
            bindings = api.get(f"/bindings/{quote(vhost, safe='')}").json()
        assert set(queues) == {queue.name for queue in QUEUES}
        for queue in QUEUES:
            assert queues[queue.name]["arguments"] == queue.arguments, queue.name
            bound = {(b["source"], b["routing_key"]) for b in bindings if b["destination"] == queue.name}
            assert {(queue.exchange, key) for key in queue.routing_keys} <= bound, queue.name
        # A service declaring the topology on this broker must find exactly what it expects: a queue with
        # other arguments would fail the declaration with PRECONDITION_FAILED.
        connection = await connect(BrokerSettings(amqp_url=vhost_url(vhost)), name="earshot-test-definitions")
        try:
            async with connection.channel() as channel:
                await declare_topology(channel)
        finally:
            await connection.close()
    finally:
        delete_vhost(vhost)
