"""The store's command line: ``run`` (results consumer + HTTP on 8081) and ``migrate`` (apply the schema)."""

from __future__ import annotations

import argparse
import asyncio

from services.common.logs import configure_logging
from services.store.settings import StoreSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.store", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="consume store.results and serve the HTTP API until SIGTERM/Ctrl-C")
    commands.add_parser("migrate", help="create the database if missing and apply the Alembic migrations")
    arguments = parser.parse_args(argv)
    configure_logging()
    settings = StoreSettings()
    if arguments.command == "migrate":
        from services.store.migrate import migrate

        migrate(settings)
    else:
        from services.store.service import serve

        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
