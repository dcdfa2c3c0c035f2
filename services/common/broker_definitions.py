"""``deploy/rabbitmq/definitions.json``: the AMQP topology of ``services.common.topology`` as a RabbitMQ
definitions file, so a broker can be given the exchanges, queues and bindings before any service starts.

The file is generated, never edited by hand: ``python -m services.store export-definitions`` rewrites it, and
a test fails with that command whenever the topology changes and the file was not regenerated. It holds no
users or passwords (those come from the deployment's secrets); services still declare the same topology at
start, which is a no-op when the definitions were imported first.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.common.settings import REPO_ROOT
from services.common.topology import EXCHANGES, QUEUES

DEFINITIONS_PATH = REPO_ROOT / "deploy" / "rabbitmq" / "definitions.json"
EXPORT_COMMAND = "python -m services.store export-definitions"


def definitions(vhost: str = "/") -> dict[str, list[dict[str, object]]]:
    """The topology in the format of RabbitMQ's ``GET /api/definitions``."""
    exchanges = [
        {
            "name": exchange.name,
            "vhost": vhost,
            "type": exchange.type,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for exchange in EXCHANGES
    ]
    queues = [
        {
            "name": queue.name,
            "vhost": vhost,
            "durable": True,
            "auto_delete": False,
            "arguments": dict(sorted(queue.arguments.items())),
        }
        for queue in QUEUES
    ]
    bindings = [
        {
            "source": queue.exchange,
            "vhost": vhost,
            "destination": queue.name,
            "destination_type": "queue",
            "routing_key": routing_key,
            "arguments": {},
        }
        for queue in QUEUES
        for routing_key in queue.routing_keys
    ]
    return {"vhosts": [{"name": vhost}], "exchanges": exchanges, "queues": queues, "bindings": bindings}


def definitions_text() -> str:
    return json.dumps(definitions(), indent=2, sort_keys=False) + "\n"


def export_definitions(path: Path = DEFINITIONS_PATH) -> Path:
    """Write the definitions file; returns where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(definitions_text())
    return path
