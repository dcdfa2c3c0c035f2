"""The store's command line: ``run`` (results consumer + HTTP on 8081), ``migrate`` (apply the schema),
``replay-dlq QUEUE`` (move dead-lettered messages back after a fix), ``create-admin-key`` (for ``/ops``),
``export-definitions`` (write ``deploy/rabbitmq/definitions.json`` from the code's AMQP topology)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.common.logs import configure_logging
from services.store.settings import StoreSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.store", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="consume store.results and serve the HTTP API until SIGTERM/Ctrl-C")
    commands.add_parser("migrate", help="create the database if missing and apply the Alembic migrations")
    replay = commands.add_parser("replay-dlq", help="move QUEUE.dlq's messages back to QUEUE")
    replay.add_argument("queue", help="the work queue, e.g. cry.classify, kws.scan, store.results")
    replay.add_argument("--limit", type=int, default=None, help="move at most this many (default: all)")
    commands.add_parser("export-definitions", help="write deploy/rabbitmq/definitions.json from the topology")
    commands.add_parser("create-admin-key", help="print a new /ops admin key and the sha256 to configure")
    arguments = parser.parse_args(argv)
    configure_logging()
    if arguments.command == "replay-dlq":
        from services.store.replay import run_replay

        sys.exit(run_replay(arguments.queue, arguments.limit))
    if arguments.command == "create-admin-key":
        from services.store.ops import new_admin_key

        raw_key, key_sha256 = new_admin_key()
        print(f"admin key (give it to the operators; shown once): {raw_key}")
        print(f"EARSHOT_ADMIN_KEY_SHA256={key_sha256}")
        return
    if arguments.command == "export-definitions":
        from services.common.broker_definitions import export_definitions

        print(f"wrote {export_definitions()}")
        return
    settings = StoreSettings()
    if arguments.command == "migrate":
        from services.store.migrate import migrate

        migrate(settings)
    else:
        from services.store.service import serve

        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
